import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../../src/brokers/broker.js';
import type { TaskMessage } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER } from '../../../src/core/settlement.js';
import { defineTask } from '../../../src/core/task.js';
import type { TaskOutcome } from '../../../src/core/task-outcome.js';
import type { WorkerEvent } from '../../../src/worker/events.js';
import { type TaskExecutor, ThrottledError } from '../../../src/worker/executor.js';
import { DispatchFlow, type FlowOptions } from '../../../src/worker/flow.js';
import { deliveryOf, fakeBroker, SUCCEEDED } from '../../helpers/lambda.js';
import { recordingLogger } from '../../helpers/redis.js';

const quick = defineTask({ name: 'app.quick', queue: 'q' }, () => null);
const slow = defineTask({ name: 'app.slow', queue: 'q' }, () => null);
const registry = createRegistry({ tasks: [quick, slow], queues: [{ name: 'q' }] });

/** An executor whose executions end when the test says, one promise per call. */
function gatedExecutor(batchSize: number) {
  const calls: { task: string; messages: readonly TaskMessage[]; finish(): void }[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const executor: TaskExecutor = {
    batchSize,
    execute(task, messages) {
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      return new Promise<TaskOutcome[]>((resolve) => {
        calls.push({
          task,
          messages,
          finish: () => {
            running--;
            resolve(messages.map(() => SUCCEEDED));
          },
        });
      });
    },
  };
  return {
    executor,
    calls,
    get mostAtOnce() {
      return mostAtOnce;
    },
  };
}

function flowOf(executor: TaskExecutor, options: Partial<FlowOptions> = {}) {
  const broker = fakeBroker();
  const events: WorkerEvent[] = [];
  const logger = recordingLogger();
  const flow = new DispatchFlow(broker, registry, executor, {
    slots: 10,
    readAhead: 0,
    poisonCap: 5,
    now: Date.now,
    onOutcome: (event) => events.push(event),
    logger,
    ...options,
  });
  return { flow, broker, events, logger };
}

const deliveries = (task: typeof quick, count: number): Delivery[] =>
  Array.from({ length: count }, () => deliveryOf(task.createMessage()));
const idOf = (event: WorkerEvent) =>
  event.delivery.result.ok ? event.delivery.result.message.id : null;
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('DispatchFlow', () => {
  it('settles quick messages while a slow one holds its own slot', async () => {
    // Prepare
    const gate = gatedExecutor(1);
    const { flow, events } = flowOf(gate.executor);
    const [slowOne] = deliveries(slow, 1) as [Delivery];

    // Act
    flow.accept([slowOne]);
    const quickOnes = deliveries(quick, 20);
    flow.accept(quickOnes);
    for (let round = 0; round < 3; round++) {
      for (const call of gate.calls.filter((c) => c.task === 'app.quick')) call.finish();
      await tick();
      await tick();
    }

    // Assess
    expect(events.map(idOf).sort()).toEqual(
      quickOnes.map((d) => idOf({ delivery: d } as WorkerEvent)).sort(),
    );
    expect(flow.held).toBe(1);
    gate.calls.find((call) => call.task === 'app.slow')?.finish();
    await flow.idle();
    expect(events).toHaveLength(21);
  });

  it('keeps up to slots executions of batchSize messages in flight', async () => {
    // Prepare
    const gate = gatedExecutor(10);
    const { flow } = flowOf(gate.executor, { slots: 100 });

    // Act
    flow.accept(deliveries(quick, 1_000));

    // Assess
    expect(gate.calls).toHaveLength(100);
    expect(gate.calls.every((call) => call.messages.length === 10)).toBe(true);
    expect(gate.mostAtOnce).toBe(100);
    expect(flow.room()).toBe(0);
    for (const call of gate.calls) call.finish();
    await flow.idle();
  });

  it('starts waiting executions as slots free, and offers room once messages are settled', async () => {
    // Prepare
    const gate = gatedExecutor(1);
    const { flow } = flowOf(gate.executor, { slots: 2, readAhead: 1 });

    // Act
    const roomBefore = flow.room();
    flow.accept(deliveries(quick, 3));
    const roomFull = flow.room();
    gate.calls[0]?.finish();
    await tick();
    const roomWhileSettling = flow.room();
    await tick();

    // Assess
    expect([roomBefore, roomFull, roomWhileSettling]).toEqual([3, 0, 0]);
    expect(gate.calls).toHaveLength(3);
    expect(flow.room()).toBe(1);
    for (const call of gate.calls.slice(1)) call.finish();
    await flow.idle();
  });

  it('groups one task’s messages into executions, and never mixes tasks', async () => {
    // Prepare
    const gate = gatedExecutor(3);
    const { flow } = flowOf(gate.executor);

    // Act
    flow.accept([...deliveries(quick, 4), ...deliveries(slow, 2), ...deliveries(quick, 1)]);

    // Assess
    expect(gate.calls.map((call) => [call.task, call.messages.length])).toEqual([
      ['app.quick', 3],
      ['app.quick', 2],
      ['app.slow', 2],
    ]);
    for (const call of gate.calls) call.finish();
    await flow.idle();
  });

  it('waits on a throttled executor, narrows how many run at once, and counts nothing', async () => {
    // Prepare
    let throttles = 3;
    let running = 0;
    let mostAfterThrottle = 0;
    const executor: TaskExecutor = {
      batchSize: 1,
      async execute(_task, messages) {
        running++;
        if (throttles < 3) mostAfterThrottle = Math.max(mostAfterThrottle, running);
        await tick();
        running--;
        if (throttles > 0) {
          throttles--;
          throw new ThrottledError('invoking f failed: TooManyRequestsException: Rate Exceeded.');
        }
        return messages.map(() => SUCCEEDED);
      },
    };
    const { flow, broker, logger } = flowOf(executor, { slots: 8 });

    // Act
    flow.accept(deliveries(quick, 8));
    await flow.idle();

    // Assess
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual(Array(8).fill('done'));
    expect(logger.warnings.length).toBeGreaterThanOrEqual(1);
    expect(logger.warnings[0]).toMatch(
      /invoking app\.quick is throttled; \d+ at once, next in 100 ms/,
    );
    expect(mostAfterThrottle).toBeLessThan(8);
  });

  it('re-queues the messages of a failed execution with one more failure counted', async () => {
    // Prepare
    const executor: TaskExecutor = {
      batchSize: 10,
      execute: async () => {
        throw new Error('Task timed out after 30.03 seconds');
      },
    };
    const { flow, broker, events } = flowOf(executor);

    // Act
    flow.accept(deliveries(quick, 2));
    await flow.idle();

    // Assess
    const settlements = broker.settled().map((item) => item.settlement);
    expect(settlements.map((s) => s.kind)).toEqual(['retry-later', 'retry-later']);
    expect(settlements[0]?.kind === 'retry-later' && settlements[0].message.extraHeaders).toEqual({
      [INVOKE_FAILURES_HEADER]: 1,
    });
    expect(events[0]?.outcome).toMatchObject({ kind: 'invoke-failed', failures: 1, dead: false });
  });

  it('puts back unrun what waits for a slot when released', async () => {
    // Prepare
    const gate = gatedExecutor(1);
    const { flow, broker, events } = flowOf(gate.executor, { slots: 1, readAhead: 2 });
    const sent = deliveries(quick, 3);

    // Act
    const before = Date.now();
    flow.accept(sent);
    flow.releaseWaiting();
    gate.calls[0]?.finish();
    await flow.idle();

    // Assess
    expect(gate.calls).toHaveLength(1);
    const back = broker.settled().filter((item) => item.settlement.kind === 'retry-later');
    expect(back).toHaveLength(2);
    for (const { settlement } of back) {
      if (settlement.kind !== 'retry-later') continue;
      expect(settlement.dueAt.getTime()).toBeGreaterThanOrEqual(before);
      expect(settlement.message.extraHeaders).toEqual({});
    }
    expect(events.filter((event) => event.outcome.kind === 'released')).toHaveLength(2);
  });

  it('coalesces settlements known in the same turn into one broker call', async () => {
    // Prepare
    const gate = gatedExecutor(1);
    const { flow, broker } = flowOf(gate.executor);

    // Act
    flow.accept(deliveries(quick, 5));
    for (const call of gate.calls) call.finish();
    await flow.idle();

    // Assess
    expect(broker.settleCalls).toHaveLength(1);
    expect(broker.settleCalls[0]).toHaveLength(5);
  });

  it('hands a settlement failure to the worker and forgets the messages (the broker restores them)', async () => {
    // Prepare
    const gate = gatedExecutor(1);
    const broker = fakeBroker({ failWith: new Error('ECONNRESET') });
    const flow = new DispatchFlow(broker, registry, gate.executor, {
      slots: 2,
      readAhead: 0,
      poisonCap: 5,
      now: Date.now,
      logger: recordingLogger(),
    });

    // Act
    flow.accept(deliveries(quick, 2));
    for (const call of gate.calls) call.finish();
    await flow.idle();

    // Assess
    expect(flow.takeSettleError()?.message).toBe('ECONNRESET');
    expect(flow.takeSettleError()).toBeUndefined();
    expect(flow.held).toBe(0);
  });

  it('keeps settling when onOutcome throws', async () => {
    // Prepare
    const gate = gatedExecutor(1);
    const logger = recordingLogger();
    const broker = fakeBroker();
    const flow = new DispatchFlow(broker, registry, gate.executor, {
      slots: 2,
      readAhead: 0,
      poisonCap: 5,
      now: Date.now,
      onOutcome: () => {
        throw new Error('report failed');
      },
      logger,
    });

    // Act
    flow.accept(deliveries(quick, 2));
    for (const call of gate.calls) call.finish();
    await flow.idle();

    // Assess
    expect(broker.settled()).toHaveLength(2);
    expect(logger.warnings).toEqual([
      'worker: onOutcome threw: report failed',
      'worker: onOutcome threw: report failed',
    ]);
  });
});
