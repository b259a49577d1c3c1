/**
 * The scheduled Redis poller against real Redis (database 8 of 127.0.0.1:6379), with the task
 * functions invoked in this process: what it finds is run and settled (done, parked, dead-lettered),
 * retries and failed invokes come back through the delay zset, and it stops taking messages once
 * its remaining time drops under `stopTakingAtMs`, settling what it holds.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTaskMessage, EMPTY_EMBED } from '../../src/core/message.js';
import { memoryOnceStore } from '../../src/core/once-store.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER } from '../../src/core/settlement.js';
import { defineTask } from '../../src/core/task.js';
import { createPollerHandler, type PollerOptions } from '../../src/lambda/poller-handler.js';
import { createRuntime, type LambdaRuntime } from '../../src/lambda/runtime.js';
import { RetryableError } from '../helpers/factories.js';
import {
  fakeContext,
  type InProcessInvokerOptions,
  inProcessInvoker,
  manualRemaining,
} from '../helpers/lambda.js';
import { redisBench, redisUrl } from '../helpers/redis.js';

const DB = 8;
const bench = redisBench(DB);
const runtimes: LambdaRuntime[] = [];

/** An app on a queue of its own: `it.work` runs as its `mode` kwarg says. */
function app(): { queue: string; registry: Registry; runtime: LambdaRuntime } {
  const queue = bench.newQueue();
  const work = defineTask(
    {
      name: 'it.work',
      queue,
      kwargs: z.object({ mode: z.enum(['ok', 'retry-once', 'bug']).default('ok') }),
      retry: { on: [RetryableError], exclude: [TypeError] },
      defaultRetryDelay: 0.3,
    },
    ({ mode }, ctx) => {
      if (mode === 'retry-once' && ctx.retries === 0) throw new RetryableError('busy');
      if (mode === 'bug') throw new TypeError('a bug');
      return ctx.id;
    },
  );
  const registry = createRegistry({ tasks: [work], queues: [{ name: queue }] });
  const runtime = createRuntime({ registry, broker: { kind: 'redis', url: redisUrl(DB) } });
  runtimes.push(runtime);
  return { queue, registry, runtime };
}

/** Runs the poller once with `budgetMs` of draining before `stopTakingAtMs` (1 s) is reached. */
async function poll(
  runtime: LambdaRuntime,
  budgetMs: number,
  invoker: InProcessInvokerOptions = {},
  options: PollerOptions = {},
) {
  const client = inProcessInvoker(runtime.registry, { prefix: '', ...invoker });
  const handler = createPollerHandler(runtime, {
    stopTakingAtMs: 1_000,
    client,
    relay: false,
    ...options,
  });
  const result = await handler({}, fakeContext({ remainingMs: 1_000 + budgetMs }));
  return { result, calls: client.calls };
}

/** A metrics sink that keeps what each `publishStoredMetrics` would have written. */
function recordingMetrics() {
  const published: { dimensions: Record<string, string>; values: Record<string, number[]> }[] = [];
  let dimensions: Record<string, string> = {};
  let values: Record<string, number[]> = {};
  return {
    published,
    addDimensions(added: Record<string, string>) {
      dimensions = { ...dimensions, ...added };
    },
    addMetric(name: string, _unit: string, value: number) {
      values[name] = [...(values[name] ?? []), value];
    },
    publishStoredMetrics() {
      published.push({ dimensions, values });
      dimensions = {};
      values = {};
    },
  };
}

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.broker().close();
  await bench.cleanup();
});
afterAll(() => bench.close());

describe('the Redis poller', () => {
  it('runs what it finds in the task functions and settles every message', async () => {
    // Prepare
    const { queue, registry, runtime } = app();
    const [work] = registry.tasks as [(typeof registry.tasks)[number]];
    const ok = [work.createMessage(), work.createMessage(), work.createMessage()];
    const bug = work.createMessage({ kwargs: { mode: 'bug' } });
    const later = work.createMessage({ countdown: 3_600 });
    const stranger = createTaskMessage({ task: 'it.gone', queue });
    await runtime.broker().publish([...ok, bug, later, stranger]);

    const metrics = recordingMetrics();

    // Act
    const { result, calls } = await poll(runtime, 1_500, {}, { metrics });

    // Assess
    expect(result).toEqual({ settled: 6, released: 0, stopped: 'hard stop' });
    expect(calls.map((call) => call.functionName)).toEqual(['task-it-work']);
    // One EMF object of the invokes, published before the handler answered.
    expect(metrics.published).toEqual([
      {
        dimensions: { task: 'it.work', queue },
        values: { Invokes: [1], MessagesPerInvoke: [4], InFlightInvokes: [1] },
      },
    ]);
    expect(new Set(calls[0]?.ids)).toEqual(new Set([...ok, bug].map((message) => message.id)));
    expect(await runtime.broker().stats(queue)).toEqual({
      queue,
      ready: 0,
      unacked: 0,
      delayed: 1,
      deadLettered: 2,
    });
    const dead = await runtime.broker().deadLetters(queue, 10);
    expect(dead.map((entry) => [entry.id, entry.reason]).sort()).toEqual(
      [
        [bug.id, 'excluded'],
        [stranger.id, 'unknown-task'],
      ].sort(),
    );
  });

  it('runs a retry again once its delay has passed', async () => {
    // Prepare
    const { queue, registry, runtime } = app();
    const [work] = registry.tasks as [(typeof registry.tasks)[number]];
    const sent = work.createMessage({ kwargs: { mode: 'retry-once' } });
    await runtime.broker().publish([sent]);

    // Act
    const { calls } = await poll(runtime, 2_500);

    // Assess
    expect(calls.map((call) => [call.ids, call.retries])).toEqual([
      [[sent.id], [0]],
      [[sent.id], [1]],
    ]);
    const [first, second] = calls;
    const retry = first?.outcomes?.[0];
    expect(retry).toMatchObject({ kind: 'retry', errorType: 'RetryableError' });
    expect(second?.at).toBeGreaterThanOrEqual(Date.parse((retry as { dueAt: string }).dueAt));
    expect(second?.outcomes).toEqual([expect.objectContaining({ kind: 'succeeded' })]);
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
  });

  it('re-queues the batch of a failed invoke without spending a retry, and runs it later', async () => {
    // Prepare
    const { queue, registry, runtime } = app();
    const [work] = registry.tasks as [(typeof registry.tasks)[number]];
    const sent = work.createMessage();
    await runtime.broker().publish([sent]);
    let invokes = 0;
    const failOnce = () => {
      invokes++;
      if (invokes === 1) {
        throw Object.assign(new Error('Internal error.'), { name: 'ServiceException' });
      }
    };

    // Act
    const { result, calls } = await poll(runtime, 3_000, { beforeInvoke: failOnce });

    // Assess
    expect(result).toEqual({ settled: 2, released: 0, stopped: 'hard stop' });
    expect(calls.map((call) => [call.error, call.retries])).toEqual([
      ['Internal error.', [0]],
      [null, [0]],
    ]);
    const headers = calls[1]?.messages[0]?.headers as Record<string, unknown>;
    expect(headers[INVOKE_FAILURES_HEADER]).toBe(1);
    expect(calls[1]?.outcomes).toEqual([expect.objectContaining({ kind: 'succeeded' })]);
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
  });

  it('waits out a throttled invoke and runs the same messages again, counting nothing', async () => {
    // Prepare
    const { queue, registry, runtime } = app();
    const [work] = registry.tasks as [(typeof registry.tasks)[number]];
    await runtime.broker().publish(Array.from({ length: 3 }, () => work.createMessage()));
    let invokes = 0;
    const throttleTwice = () => {
      invokes++;
      if (invokes <= 2) {
        throw Object.assign(new Error('Rate Exceeded.'), { name: 'TooManyRequestsException' });
      }
    };

    // Act
    const { result, calls } = await poll(runtime, 3_000, { beforeInvoke: throttleTwice });

    // Assess
    expect(result).toEqual({ settled: 3, released: 0, stopped: 'hard stop' });
    expect(calls.map((call) => call.error)).toEqual(['Rate Exceeded.', 'Rate Exceeded.', null]);
    const headers = calls[2]?.messages.map((raw) => raw.headers as Record<string, unknown>);
    expect(headers?.map((header) => header[INVOKE_FAILURES_HEADER])).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    // The second try waited at least the first pause.
    expect((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(90);
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 0, unacked: 0, delayed: 0 });
  });

  it('stops taking messages once its remaining time drops under stopTakingAtMs, settling what it holds', async () => {
    // Prepare
    const { queue, registry, runtime } = app();
    const [work] = registry.tasks as [(typeof registry.tasks)[number]];
    await runtime.broker().publish(Array.from({ length: 5 }, () => work.createMessage()));
    const remaining = manualRemaining(10_000);
    const client = inProcessInvoker(registry, {
      prefix: '',
      // The first batch takes the poller past its stop mark.
      beforeInvoke: () => remaining.set(4_999),
    });
    const handler = createPollerHandler(runtime, {
      relay: false,
      stopTakingAtMs: 5_000,
      maxInFlight: 1,
      invokeBatchSize: 2,
      client,
    });

    // Act
    const result = await handler({}, fakeContext({ remaining: remaining.remaining }));

    // Assess
    // Two more were taken ahead of a free slot; at the stop mark they went back unrun.
    expect(result).toEqual({ settled: 2, released: 2, stopped: 'hard stop' });
    expect(client.calls.map((call) => call.ids.length)).toEqual([2]);
    expect(await runtime.broker().stats(queue)).toMatchObject({
      ready: 3,
      unacked: 0,
      delayed: 0,
      deadLettered: 0,
    });
  });
});

describe('the poller relay', () => {
  it('hands the drain over to the next tick’s poller without a pause, and drains a duplicate tick never', async () => {
    // Prepare: ticks 2 s apart; a message is published every 100 ms throughout.
    const { queue, registry, runtime } = app();
    const [work] = registry.tasks as [(typeof registry.tasks)[number]];
    const intervalMs = 2_000;
    const relay = memoryOnceStore();
    const client = inProcessInvoker(registry, { prefix: '' });
    const handler = createPollerHandler(runtime, {
      stopTakingAtMs: 1_000,
      intervalMs,
      relay,
      client,
      maxInFlight: 10,
    });
    const sentAt = new Map<string, number>();
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const message = work.createMessage();
        sentAt.set(message.id, Date.now());
        await runtime.broker().publish([message]);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const tickA = Math.floor(Date.now() / intervalMs) * intervalMs;
    const context = () => fakeContext({ remainingMs: 20_000, functionName: 'svc-dev-poller' });

    // Act
    const first = handler({ time: new Date(tickA).toISOString() }, context());
    await new Promise((resolve) => setTimeout(resolve, tickA + intervalMs - Date.now() + 50));
    const secondStartedAt = Date.now();
    const secondContext = manualRemaining(20_000);
    const second = handler(
      { time: new Date(tickA + intervalMs).toISOString() },
      fakeContext({ remaining: secondContext.remaining, functionName: 'svc-dev-poller' }),
    );
    const duplicate = await handler(
      { time: new Date(tickA + intervalMs).toISOString() },
      context(),
    );
    const firstResult = await first;
    const firstEndedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    publishing = false;
    await publisher;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    secondContext.set(0);
    const secondResult = await second;

    // Assess
    expect(duplicate).toEqual({ settled: 0, released: 0, stopped: 'duplicate tick' });
    expect(firstResult.stopped).toBe('handed over');
    expect(secondResult.stopped).toBe('hard stop');
    // The first stops within a look (1 s) and the overlap (1 s) of the second's start.
    expect(firstEndedAt - secondStartedAt).toBeLessThan(3_000);
    // Every message ran, each within about one receive wait of its publish: no pause.
    const waits = client.calls.flatMap((call) =>
      call.ids.map((id) => call.at - (sentAt.get(id ?? '') ?? Number.NaN)),
    );
    expect(waits).toHaveLength(sentAt.size);
    expect(Math.max(...waits)).toBeLessThan(1_500);
    expect(firstResult.settled + secondResult.settled).toBe(sentAt.size);
    expect(await runtime.broker().stats(queue)).toMatchObject({ ready: 0, unacked: 0 });
  });

  it('continues a chain with the result the task function returned', async () => {
    // Prepare: the next step is a task of another app, on a queue nobody here drains.
    const { queue, registry, runtime } = app();
    const next = bench.newQueue();
    const [work] = registry.tasks as [(typeof registry.tasks)[number]];
    const step = {
      task: 'other.next',
      args: ['two'],
      kwargs: {},
      options: { task_id: 'next-step-id', queue: next },
      subtask_type: null,
      immutable: false,
    };
    const sent = {
      ...work.createMessage(),
      embed: { ...EMPTY_EMBED, chain: [step] },
      rawBody: null,
    };
    await runtime.broker().publish([sent]);

    // Act
    const { calls } = await poll(runtime, 1_000);

    // Assess
    expect(calls[0]?.outcomes).toEqual([
      { kind: 'succeeded', durationMs: expect.any(Number), result: sent.id },
    ]);
    const [delivery] = await runtime.broker().receive(next, { max: 10, waitMs: 1_000 });
    expect(delivery?.result.ok && delivery.result.message).toMatchObject({
      id: 'next-step-id',
      task: 'other.next',
      args: [sent.id, 'two'],
      parentId: sent.id,
      rootId: sent.id,
    });
    expect((await runtime.broker().stats(queue)).unacked).toBe(0);
  });
});
