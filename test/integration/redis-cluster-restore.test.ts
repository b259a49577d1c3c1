/**
 * Stale holds restored both ways between our Redis broker and real Python Celery on a Redis
 * Cluster whose one master holds all 16384 slots, kombu with `global_keyprefix` `{celery}:` on the
 * node as a plain Redis and ours on `redis+cluster://` (see test/helpers/redis-cluster-interop.ts):
 * for Debian's Celery 5.2.6 and Celery 5.6.3 (when `CELERY56_PY` names its interpreter), each
 * side restores what the other held when it died (a 2 s visibility timeout on both sides), and
 * no key of either side lands outside the prefix. Sends both ways are in
 * redis-cluster-interop.test.ts.
 *
 * One throw-away cluster for the file, stopped in `afterAll`; each Celery version has queues of
 * its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CeleryWorker, stopCeleryWorkers } from '../helpers/celery.js';
import {
  CELERY_VERSIONS,
  celeryRunOf,
  fixture,
  InteropCluster,
  ids,
  runOurWorker,
  VISIBILITY_TIMEOUT,
} from '../helpers/redis-cluster-interop.js';
import { until } from '../helpers/until.js';

let interop: InteropCluster;

beforeAll(async () => {
  interop = await InteropCluster.start();
});

afterAll(async () => {
  await stopCeleryWorkers();
  await interop?.stop();
});

for (const { version, python, missing } of CELERY_VERSIONS) {
  const title = python ? `Celery ${version}` : `Celery ${version} (skipped: ${missing})`;
  describe.skipIf(!python)(title, () => {
    describe('beside a Celery worker with the prefix', () => {
      const shared = fixture(`celery-${version}`);
      const { queue, app } = shared;
      let celery: CeleryWorker;
      let heldByUs: string[];

      // Our consumer takes two messages and dies without settling them; the Celery worker starts
      // once our holds are past its visibility timeout, so it finds them stale when it starts
      // (kombu's restore_visible at poll start).
      beforeAll(async () => {
        const held = [1, 2].map((n) => app.doWork.createMessage({ args: ['held', n] }));
        const crashing = interop.broker(app);
        await crashing.publish(held);
        expect(await crashing.receive(queue, { max: 10, waitMs: 1000 })).toHaveLength(2);
        const heldAt = Date.now();
        await crashing.close();
        heldByUs = ids(held);
        expect((await interop.heldIds(queue)).sort()).toEqual(heldByUs);
        expect(await interop.unprefixed('unacked', 'unacked_index')).toEqual([]);

        await sleep(Math.max(0, heldAt + VISIBILITY_TIMEOUT * 1000 + 200 - Date.now()));
        celery = await interop.startCelery(python, queue);
      });

      it('Celery restores and runs, redelivered, what our dead consumer held', async () => {
        // Act
        await celery.waitForRecords(() =>
          heldByUs.every((id) => celery.outcomes().some((o) => o.id === id)),
        );

        // Assess
        const restored = heldByUs.map((id) => celeryRunOf(celery, id));
        expect(restored.map((run) => run.args)).toEqual([
          ['held', expect.any(Number)],
          ['held', expect.any(Number)],
        ]);
        expect(restored.map((run) => run.delivery_info.redelivered)).toEqual([true, true]);
        expect(celery.runs().filter((run) => heldByUs.includes(run.id))).toHaveLength(2);
        await until(async () => (await interop.heldIds(queue)).length === 0, 5000, 'Celery to ack');
      });

      it('our restoreStale restores, and our worker runs, what a killed Celery worker held', async () => {
        // Prepare: Python sends three countdown tasks; the Celery worker holds them in
        // `{celery}:unacked` until their eta, and is killed before.
        const sendStart = Date.now();
        const { sent } = await interop.sendFromPython(python, queue, [
          { args: ['held-by-celery', 1], countdown: 3 },
          { args: ['held-by-celery', 2], countdown: 3 },
          { args: ['held-by-celery', 3], countdown: 3 },
        ]);
        const sendEnd = Date.now();
        await until(
          async () => (await interop.heldIds(queue)).length === 3,
          10_000,
          'the Celery worker to hold three messages',
        );
        expect((await interop.heldIds(queue)).sort()).toEqual(ids(sent));
        expect(await interop.unprefixed('unacked', 'unacked_index')).toEqual([]);
        await celery.stop('SIGKILL');
        const killedAt = Date.now();
        expect(celery.runs().filter((run) => ids(sent).includes(run.id))).toEqual([]);
        const stale = Math.max(killedAt + VISIBILITY_TIMEOUT * 1000, sendEnd + 3000) + 200;
        await sleep(Math.max(0, stale - Date.now()));

        // Act
        const broker = interop.broker(app, VISIBILITY_TIMEOUT);
        const restored = await broker.restoreStale?.();
        await runOurWorker(broker, shared, () => shared.runs.length >= 3);

        // Assess
        expect(restored).toBe(3);
        expect(ids(shared.runs)).toEqual(ids(sent));
        for (const run of shared.runs) {
          expect(run).toMatchObject({ args: ['held-by-celery', expect.any(Number)], retries: 0 });
          expect(run.redelivered).toBe(true);
          expect(Date.parse(run.eta ?? '')).toBeGreaterThanOrEqual(sendStart + 3000);
          expect(run.ranAt).toBeGreaterThanOrEqual(Date.parse(run.eta ?? ''));
        }
        expect(await interop.heldIds(queue)).toEqual([]);
        expect(await broker.stats(queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
      });
    });

    it('kept every key of both sides under the prefix, in the hash tag slot', async () => {
      await interop.expectEveryKeyPrefixed();
    });
  });
}
