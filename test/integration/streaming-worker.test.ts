/**
 * The streaming worker loop on the real brokers (`BROKERS=redis,rabbitmq`): a slow task holds
 * its own slot only, so quick tasks sent after it run and are settled while it runs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { BROKERS, type BrokerHarness, createHarness } from '../helpers/brokers.js';

const SLOW_MS = 5_000;

describe.each(BROKERS)('the worker on %s', (kind) => {
  let harness: BrokerHarness;

  beforeEach(async () => {
    harness = await createHarness(kind);
  });

  afterEach(async () => {
    await harness.cleanup();
  });

  it('runs and settles 20 quick tasks sent after a 5 s task while it runs (concurrency 10)', async () => {
    // Prepare
    const finished = new Map<string, number>();
    const queue = harness.queue;
    const slow = defineTask({ name: 'it.slow', queue }, async (_kwargs, ctx) => {
      await new Promise((resolve) => setTimeout(resolve, SLOW_MS));
      finished.set(ctx.id, Date.now());
    });
    const quick = defineTask({ name: 'it.quick', queue }, (_kwargs, ctx) => {
      finished.set(ctx.id, Date.now());
    });
    const registry = createRegistry({ tasks: [slow, quick], queues: [{ name: queue }] });
    const producer = harness.broker();
    const worker = harness.broker();
    const settledAt = new Map<string, number>();
    const stop = new AbortController();
    const running = runLocalWorker(worker, registry, {
      queues: [queue],
      concurrency: 10,
      signal: stop.signal,
      onOutcome: ({ delivery }) => {
        if (delivery.result.ok) settledAt.set(delivery.result.message.id, Date.now());
        if (settledAt.size === 21) stop.abort();
      },
    });

    // Act
    const slowOne = slow.createMessage();
    await producer.publish([slowOne]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const quickOnes = Array.from({ length: 20 }, () => quick.createMessage());
    const sentAt = Date.now();
    await producer.publish(quickOnes);
    await running;

    // Assess
    const slowSettled = settledAt.get(slowOne.id) ?? Number.NaN;
    const quickSettled = quickOnes.map((message) => settledAt.get(message.id) ?? Number.NaN);
    expect(settledAt.size).toBe(21);
    // Every quick task is settled well before the slow one ends (it has ~4.5 s left).
    expect(Math.max(...quickSettled)).toBeLessThan(slowSettled - 2_000);
    expect(Math.max(...quickSettled) - sentAt).toBeLessThan(2_000);
    expect(await worker.stats(queue)).toMatchObject({ ready: 0, unacked: 0, deadLettered: 0 });
  });
});
