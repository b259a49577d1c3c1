/**
 * Proof against real Python Celery on a Redis Cluster whose one master holds all 16384 slots
 * (ElastiCache Serverless' shape), set up as Celery users set it up: kombu's plain Redis transport
 * on `redis://<node>/0` with `broker_transport_options={'global_keyprefix': '{celery}:'}`, which
 * works because every key shares the hash tag's slot and that slot's node answers everything.
 * Our side uses `redis+cluster://<node>/0`, whose default key prefix is that same `{celery}:`.
 *
 * For Debian's Celery 5.2.6 (kombu 5.2.4) and Celery 5.6.3 (kombu 5.6.2, when `CELERY56_PY`
 * names its interpreter): a Python producer sends and our worker runs; our producer publishes
 * and a Celery worker runs; and no key of either side lands outside the prefix. Restoring what
 * the other side held when it died is in redis-cluster-restore.test.ts.
 *
 * One throw-away cluster for the file (test/helpers/redis-cluster-interop.ts), stopped in
 * `afterAll`; each Celery version has queues of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import type { TaskMessage } from '../../src/core/message.js';
import { DO_WORK, type RunRecord } from '../fixtures-app/registry.js';
import { type CeleryWorker, stopCeleryWorkers } from '../helpers/celery.js';
import {
  CELERY_VERSIONS,
  celeryRunOf,
  fixture,
  InteropCluster,
  PREFIX,
  type PythonSent,
  runOurWorker,
} from '../helpers/redis-cluster-interop.js';

const SEPARATOR = '\x06\x16';

let interop: InteropCluster;

beforeAll(async () => {
  interop = await InteropCluster.start();
});

afterAll(async () => {
  await stopCeleryWorkers();
  await interop?.stop();
});

function runOf(runs: readonly RunRecord[], id: string): RunRecord {
  const run = runs.find((candidate) => candidate.id === id);
  if (!run) expect.fail(`task ${id} did not run; runs: ${JSON.stringify(runs)}`);
  return run;
}

it('runs on a real cluster: cluster mode, one master serving all 16384 slots', async () => {
  // Act
  const { node, cluster } = interop;
  const info = await node.info('cluster');
  const clusterInfo = String(await node.call('CLUSTER', ['INFO']));
  const tagSlot = await node.call('CLUSTER', ['KEYSLOT', `${PREFIX}unacked`]);

  // Assess
  expect(info).toContain('cluster_enabled:1');
  expect(clusterInfo).toContain('cluster_state:ok');
  expect(clusterInfo).toContain('cluster_slots_assigned:16384');
  expect(clusterInfo).toContain('cluster_known_nodes:1\r');
  expect(await node.call('CLUSTER', ['KEYSLOT', `${PREFIX}some-queue`])).toBe(tagSlot);
  expect(await node.call('CLUSTER', ['KEYSLOT', 'unacked'])).not.toBe(tagSlot);
  expect(parseBrokerConfig(cluster.url)).toMatchObject({ kind: 'redis', keyPrefix: PREFIX });
});

for (const { version, kombu, python, missing } of CELERY_VERSIONS) {
  const title = python ? `Celery ${version}` : `Celery ${version} (skipped: ${missing})`;
  describe.skipIf(!python)(title, () => {
    it('our worker runs what a Python producer with the prefix sent: args, countdown, eta', async () => {
      // Prepare
      const ours = fixture(`py-${version}`);
      const eta = new Date(Date.now() + 3500);
      const args = [1, 'two', { three: 3 }];
      const kwargs = { user_id: 42, tags: ['a', 'b'] };
      const tasks = [
        { args, kwargs },
        { args: ['countdown'], countdown: 2 },
        { args: ['eta'], eta: eta.toISOString().replace('Z', '+00:00') },
      ];
      let fromPython: PythonSent | undefined;
      let sendStart = 0;
      let sendEnd = 0;

      // Act: our worker (which reads only `{celery}:` keys) runs before Python sends, so both
      // delayed messages reach it before they are due however long a Python start takes.
      const events = await runOurWorker(
        interop.broker(ours.app),
        ours,
        () => ours.runs.length >= 3,
        async () => {
          sendStart = Date.now();
          fromPython = await interop.sendFromPython(python, ours.queue, tasks);
          sendEnd = Date.now();
        },
      );

      // Assess
      expect(fromPython).toMatchObject({
        celery: version,
        kombu,
        transport_options: { global_keyprefix: PREFIX },
      });
      const [plain, byCountdown, byEta] = (fromPython?.sent ?? []).map(({ id }) => id);
      expect(runOf(ours.runs, plain ?? '')).toMatchObject({
        task: DO_WORK,
        args,
        kwargs,
        retries: 0,
        eta: null,
        rootId: plain,
        redelivered: false,
      });
      const countdownRun = runOf(ours.runs, byCountdown ?? '');
      const countdownEta = Date.parse(countdownRun.eta ?? '');
      expect(countdownEta).toBeGreaterThanOrEqual(sendStart + 2000);
      expect(countdownEta).toBeLessThanOrEqual(sendEnd + 2000);
      expect(countdownRun.ranAt).toBeGreaterThanOrEqual(countdownEta);
      const etaRun = runOf(ours.runs, byEta ?? '');
      expect(etaRun).toMatchObject({ args: ['eta'], eta: eta.toISOString() });
      expect(etaRun.ranAt).toBeGreaterThanOrEqual(eta.getTime());
      expect(ours.runs).toHaveLength(3);
      // Both parked in our delay zset under the prefix until due (the promote script's keys
      // share the tag's slot), then run once.
      for (const id of [byCountdown, byEta]) {
        const kinds = events
          .filter((event) => event.delivery.result.ok && event.delivery.result.message.id === id)
          .map((event) => event.outcome.kind);
        expect(kinds).toEqual(['not-due', 'succeeded']);
      }
      // kombu bound the queue under the prefix, and wrote nothing without it.
      expect(await interop.node.smembers(`${PREFIX}_kombu.binding.${ours.queue}`)).toEqual([
        `${ours.queue}${SEPARATOR}${SEPARATOR}${ours.queue}`,
      ]);
      expect(await interop.unprefixed(ours.queue, `_kombu.binding.${ours.queue}`)).toEqual([]);
    });

    describe('beside a Celery worker with the prefix', () => {
      const { queue, app } = fixture(`celery-${version}`);
      let celery: CeleryWorker;
      let published: TaskMessage[];

      // Our producer publishes three messages on the cluster URL, then the Celery worker starts.
      beforeAll(async () => {
        const root = app.doWork.createMessage({ args: [1, 'two'], kwargs: { user_id: 42 } });
        published = [
          root,
          app.doWork.createMessage({ args: ['child'], parentId: root.id, rootId: root.id }),
          app.doWork.createMessage({ args: ['later'], countdown: 2 }),
        ];
        await interop.broker(app).publish(published);
        expect(await interop.node.llen(`${PREFIX}${queue}`)).toBe(3);
        celery = await interop.startCelery(python, queue);
      });

      it('Celery runs what our producer published on the cluster URL', async () => {
        // Act
        await celery.waitForRecords(() =>
          published.every(({ id }) => celery.outcomes().some((o) => o.id === id)),
        );

        // Assess
        expect(celery.log()).toContain(` v${version} `);
        const [root, child, later] = published;
        for (const { id } of published) {
          expect(celery.outcomes().filter((o) => o.id === id)).toEqual([
            expect.objectContaining({ state: 'SUCCESS' }),
          ]);
        }
        expect(celeryRunOf(celery, root?.id ?? '')).toMatchObject({
          task: DO_WORK,
          args: [1, 'two'],
          kwargs: { user_id: 42 },
          retries: 0,
          eta: null,
          root_id: root?.id,
          parent_id: null,
          lang: 'ts',
          delivery_info: { routing_key: queue },
        });
        expect(celeryRunOf(celery, child?.id ?? '')).toMatchObject({
          args: ['child'],
          root_id: root?.id,
          parent_id: root?.id,
        });
        const laterRun = celeryRunOf(celery, later?.id ?? '');
        expect(Date.parse(laterRun.eta ?? '')).toBe(later?.eta?.getTime());
        expect(laterRun.recorded_at_unix * 1000).toBeGreaterThanOrEqual(later?.eta?.getTime() ?? 0);
      });
    });

    it('kept every key of both sides under the prefix, in the hash tag slot', async () => {
      await interop.expectEveryKeyPrefixed();
    });
  });
}
