import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import type { LambdaInvoker } from '../../../src/lambda/lambda-executor.js';
import { createPollerHandler } from '../../../src/lambda/poller-handler.js';
import {
  deliveryOf,
  fakeBroker,
  fakeContext,
  fakeRuntime,
  inProcessInvoker,
  manualRemaining,
} from '../../helpers/lambda.js';

const first = defineTask({ name: 'app.first', queue: 'a' }, () => 1);
const second = defineTask({ name: 'app.second', queue: 'b' }, () => 2);
const registry = createRegistry({ tasks: [first, second], queues: [{ name: 'a' }, { name: 'b' }] });

describe('createPollerHandler', () => {
  it("drains every declared queue through the tasks' functions until its time is nearly up", async () => {
    // Prepare
    const remaining = manualRemaining(120_000);
    const broker = fakeBroker({
      batches: [
        [deliveryOf(first.createMessage()), deliveryOf(first.createMessage())],
        [deliveryOf(second.createMessage())],
      ],
    });
    const client = inProcessInvoker(registry, {
      prefix: '',
      beforeInvoke: (name) => {
        if (name === 'task-app-second') remaining.set(59_999);
      },
    });
    const handler = createPollerHandler(fakeRuntime(registry, broker), { client, relay: false });

    // Act
    const result = await handler({}, fakeContext({ remaining: remaining.remaining }));

    // Assess
    expect(result).toEqual({ settled: 3, released: 0, stopped: 'hard stop' });
    expect(broker.receivedFrom).toEqual(['a', 'b']);
    expect(client.calls.map((call) => [call.functionName, call.ids.length])).toEqual([
      ['task-app-first', 2],
      ['task-app-second', 1],
    ]);
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual(['done', 'done', 'done']);
  });

  it('takes nothing when it starts with less time than stopTakingAtMs', async () => {
    // Prepare
    const broker = fakeBroker({ batches: [[deliveryOf(first.createMessage())]] });
    const handler = createPollerHandler(fakeRuntime(registry, broker), {
      relay: false,
      stopTakingAtMs: 10_000,
      client: inProcessInvoker(registry, { prefix: '' }),
    });

    // Act
    const result = await handler({}, fakeContext({ remainingMs: 9_000 }));

    // Assess
    expect(result).toEqual({ settled: 0, released: 0, stopped: 'hard stop' });
    expect(broker.receivedFrom).toEqual([]);
  });

  it('drains only the queues it is given, invokeBatchSize messages per invoke', async () => {
    // Prepare
    const remaining = manualRemaining(2_000);
    const broker = fakeBroker({
      batches: [[first, first, first].map((task) => deliveryOf(task.createMessage()))],
    });
    const client = inProcessInvoker(registry, {
      prefix: '',
      beforeInvoke: () => remaining.set(0),
    });
    const handler = createPollerHandler(fakeRuntime(registry, broker), {
      relay: false,
      queues: ['a'],
      maxInFlight: 1,
      invokeBatchSize: 2,
      stopTakingAtMs: 1_000,
      client,
    });

    // Act
    const result = await handler({}, fakeContext({ remaining: remaining.remaining }));

    // Assess
    // The third message was taken ahead of a free slot; at the stop mark it went back unrun.
    expect(result).toEqual({ settled: 2, released: 1, stopped: 'hard stop' });
    expect(client.calls.map((call) => call.ids.length)).toEqual([2]);
    expect(broker.receivedFrom).toEqual(['a']);
  });

  it('keeps 100 invokes of 10 messages in flight by default', async () => {
    // Prepare
    const remaining = manualRemaining(120_000);
    const broker = fakeBroker({
      batches: [Array.from({ length: 1_000 }, () => deliveryOf(first.createMessage()))],
    });
    const served = inProcessInvoker(registry, { prefix: '' });
    let inFlight = 0;
    let mostInFlight = 0;
    let invokes = 0;
    const client: LambdaInvoker = {
      async send(command) {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        // A Lambda's invoke overhead, 20 to 35 ms: every invoke is in flight for a while, and
        // they return at different times.
        await new Promise((resolve) => setTimeout(resolve, 20 + (invokes++ % 4) * 5));
        inFlight--;
        return served.send(command);
      },
    };
    const handler = createPollerHandler(fakeRuntime(registry, broker), {
      client,
      relay: false,
      queues: ['a'],
    });

    // Act
    const drained = handler({}, fakeContext({ remaining: remaining.remaining }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    remaining.set(0);
    const result = await drained;

    // Assess
    expect(mostInFlight).toBe(100);
    expect(served.calls.map((call) => call.ids.length)).toEqual(Array(100).fill(10));
    expect(result).toEqual({ settled: 1_000, released: 0, stopped: 'hard stop' });
  });
});
