/**
 * The poller relay on the real brokers, through the store a deployment gets (`onceStoreAt` of
 * its broker URL): a poller hands over once the next tick's poller has announced itself, and a
 * tick delivered twice drains once. Ticks are 2 s apart here, so that the test takes seconds.
 *
 * Redis: database 12, keys under a relay name of the test's own, released afterwards.
 * RabbitMQ: a throw-away vhost.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onceStoreAt } from '../../src/brokers/once-store-at.js';
import type { OnceStore } from '../../src/core/once-store.js';
import { createDrainRelay, relayTickKey } from '../../src/lambda/drain-relay.js';
import { BROKERS } from '../helpers/brokers.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { redisUrl } from '../helpers/redis.js';

const INTERVAL_MS = 2_000;

let vhost: TestVhost | undefined;
beforeAll(async () => {
  if (BROKERS.includes('rabbitmq')) vhost = await createTestVhost('relay');
});
afterAll(() => vhost?.remove());

/** The store at the broker's URL; Redis's URL carries a kombu option the store must ignore. */
function storeOn(kind: 'redis' | 'rabbitmq'): OnceStore & { close(): Promise<void> } {
  return onceStoreAt(
    kind === 'redis' ? `${redisUrl(12)}?visibility_timeout=960` : (vhost as TestVhost).url,
  );
}

/** Polls `condition` every 20 ms for up to `ms`. */
async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) {
    if (condition()) return true;
  }
  return condition();
}

describe.each(BROKERS)('the poller relay on %s', (kind) => {
  it('hands over to the next tick’s poller, and drains a tick delivered twice once', async () => {
    // Prepare
    const store = storeOn(kind);
    const name = `sc-test-${randomUUID()}`;
    const current = Math.floor(Date.now() / INTERVAL_MS) * INTERVAL_MS;
    const relay = (tick: number) =>
      createDrainRelay({
        store,
        name,
        tick: new Date(tick),
        intervalMs: INTERVAL_MS,
        checkEveryMs: 100,
        overlapMs: 100,
        hardStop: () => false,
      });
    const previous = relay(current - INTERVAL_MS);
    const next = relay(current);
    const duplicate = relay(current);
    try {
      expect(await previous.start()).toBe(true);
      await sleep(300);
      expect(previous.keepTaking()).toBe(true);

      // Act
      const announced = await next.start();
      const handedOver = await waitFor(() => !previous.keepTaking(), 3_000);
      const again = await duplicate.start();

      // Assess
      expect(announced).toBe(true);
      expect(handedOver).toBe(true);
      expect(previous.stoppedBecause()).toBe('handed over');
      expect(again).toBe(false);
      expect(next.keepTaking()).toBe(true);
    } finally {
      for (const each of [previous, next, duplicate]) each.stop();
      for (const tick of [current - INTERVAL_MS, current]) {
        await store.release(relayTickKey(name, tick));
      }
      await store.close();
    }
  });
});
