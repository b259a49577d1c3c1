import { describe, expect, it } from 'vitest';
import type { Delivery, Settlement } from '../../../src/brokers/broker.js';
import type { TaskMessage } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER, settlementFor } from '../../../src/core/settlement.js';
import { defineTask } from '../../../src/core/task.js';
import type { TaskOutcome } from '../../../src/core/task-outcome.js';
import { dispatchBatch, type WorkerEvent } from '../../../src/worker/dispatch.js';
import {
  deliveryOf,
  fakeBroker,
  SUCCEEDED,
  scriptedExecutor,
  undecodableDelivery,
} from '../../helpers/lambda.js';

const NOW = Date.parse('2026-01-01T00:00:00.000Z');
const now = () => NOW;
const QUEUE = 'q';

const alpha = defineTask({ name: 'app.alpha', queue: QUEUE }, () => null);
const beta = defineTask({ name: 'app.beta', queue: QUEUE }, () => null);
const registry = createRegistry({ tasks: [alpha, beta], queues: [{ name: QUEUE }] });

const message = (task = alpha, extra: Partial<TaskMessage> = {}): TaskMessage => ({
  ...task.createMessage({}, new Date(NOW)),
  ...extra,
});

/** The settlement each delivery got, by task id. */
function settlementsById(items: readonly { delivery: Delivery; settlement: Settlement }[]) {
  return new Map(
    items.map(({ delivery, settlement }) => [
      delivery.result.ok ? delivery.result.message.id : delivery.result.id,
      settlement,
    ]),
  );
}

describe('dispatchBatch', () => {
  it('hands each task its own messages, in order, in one executor call per task', async () => {
    // Prepare
    const sent = [message(alpha), message(beta), message(alpha), message(beta), message(alpha)];
    const executor = scriptedExecutor((_, messages) => messages.map(() => SUCCEEDED));

    // Act
    await dispatchBatch(
      fakeBroker(),
      registry,
      sent.map((m) => deliveryOf(m)),
      executor,
      { now },
    );

    // Assess
    const calls = executor.calls.map(({ task, messages }) => [task, messages.map((m) => m.id)]);
    expect(calls).toEqual([
      ['app.alpha', [sent[0]?.id, sent[2]?.id, sent[4]?.id]],
      ['app.beta', [sent[1]?.id, sent[3]?.id]],
    ]);
  });

  it('settles the whole batch in one broker.settle call', async () => {
    // Prepare
    const broker = fakeBroker();
    const deliveries = [
      deliveryOf(message(alpha)),
      deliveryOf(message(beta)),
      undecodableDelivery(QUEUE),
      deliveryOf(message(alpha, { task: 'app.gone' })),
    ];
    const executor = scriptedExecutor((_, messages) => messages.map(() => SUCCEEDED));

    // Act
    await dispatchBatch(broker, registry, deliveries, executor, { now });

    // Assess
    expect(broker.settleCalls).toHaveLength(1);
    expect(new Set(broker.settleCalls[0]?.map((item) => item.delivery))).toEqual(
      new Set(deliveries),
    );
  });

  it.each<[string, TaskOutcome, (sent: TaskMessage) => Settlement]>([
    ['a success', SUCCEEDED, () => ({ kind: 'done' })],
    [
      'an ignored error',
      { kind: 'ignored', errorType: 'Gone', durationMs: 1 },
      () => ({ kind: 'done' }),
    ],
    [
      'a retry',
      {
        kind: 'retry',
        dueAt: new Date(NOW + 10_000).toISOString(),
        errorType: 'Flaky',
        errorMessage: 'try again',
        durationMs: 1,
      },
      (sent) => ({
        kind: 'retry-later',
        message: expect.objectContaining({
          id: sent.id,
          retries: sent.retries + 1,
          parentId: sent.id,
          eta: new Date(NOW + 10_000),
        }) as TaskMessage,
        dueAt: new Date(NOW + 10_000),
      }),
    ],
    [
      'a message not due yet',
      { kind: 'not-due', dueAt: new Date(NOW + 5_000).toISOString() },
      (sent) => ({ kind: 'retry-later', message: sent, dueAt: new Date(NOW + 5_000) }),
    ],
    [
      'a dead message',
      {
        kind: 'dead',
        reason: {
          reason: 'excluded',
          detail: 'TypeError: bug',
          task: 'app.alpha',
          id: 'x',
          retries: 0,
        },
        durationMs: 1,
      },
      () => ({
        kind: 'dead-letter',
        reason: {
          reason: 'excluded',
          detail: 'TypeError: bug',
          task: 'app.alpha',
          id: 'x',
          retries: 0,
        },
      }),
    ],
  ])('settles %s from the outcome the executor returned', async (_, outcome, expected) => {
    // Prepare
    const broker = fakeBroker();
    const sent = message(alpha, { retries: 1 });

    // Act
    const events = await dispatchBatch(
      broker,
      registry,
      [deliveryOf(sent)],
      scriptedExecutor(() => [outcome]),
      { now },
    );

    // Assess
    expect(broker.settled().map((item) => item.settlement)).toEqual([expected(sent)]);
    expect(events.map((event) => event.outcome)).toEqual([outcome]);
  });

  it.each<[string, () => Delivery, string]>([
    ['an undecodable message', () => undecodableDelivery(QUEUE, 'bad-1'), 'invalid-message'],
    [
      'a message of an unknown task',
      () => deliveryOf(message(alpha, { task: 'app.gone' })),
      'unknown-task',
    ],
    [
      'an expired message',
      () => deliveryOf(message(alpha, { expires: new Date(NOW - 1) })),
      'expired',
    ],
  ])('dead-letters %s without invoking anything', async (_, make, reason) => {
    // Prepare
    const broker = fakeBroker();
    const executor = scriptedExecutor(() => []);

    // Act
    await dispatchBatch(broker, registry, [make()], executor, { now });

    // Assess
    expect(executor.calls).toEqual([]);
    const [item] = broker.settled();
    expect(item?.settlement).toMatchObject({ kind: 'dead-letter', reason: { reason } });
  });

  it('names the task and id of an undecodable message it could read', async () => {
    // Prepare
    const broker = fakeBroker();

    // Act
    const [event] = await dispatchBatch(
      broker,
      registry,
      [undecodableDelivery(QUEUE, 'bad-1')],
      scriptedExecutor(() => []),
      { now },
    );

    // Assess
    expect(broker.settled()[0]?.settlement).toMatchObject({
      kind: 'dead-letter',
      reason: { task: 'sentry.tasks.do_work', id: 'bad-1', errorType: 'InvalidMessageError' },
    });
    expect(event?.outcome).toMatchObject({ kind: 'invalid' });
  });

  it('parks a message whose eta is ahead until then, without invoking anything', async () => {
    // Prepare
    const broker = fakeBroker();
    const eta = new Date(NOW + 60_000);
    const sent = message(alpha, { eta });
    const executor = scriptedExecutor(() => []);

    // Act
    await dispatchBatch(broker, registry, [deliveryOf(sent)], executor, { now });

    // Assess
    expect(executor.calls).toEqual([]);
    expect(broker.settled()[0]?.settlement).toEqual({
      kind: 'retry-later',
      message: sent,
      dueAt: eta,
    });
  });

  it.each([
    { before: undefined, failures: 1, delayMs: 1_000 },
    { before: 1, failures: 2, delayMs: 2_000 },
    { before: 3, failures: 4, delayMs: 8_000 },
    { before: '2', failures: 3, delayMs: 4_000 },
    { before: -7, failures: 1, delayMs: 1_000 },
  ])(
    're-queues a message whose function failed $before time(s) before with $failures failure(s), retries unchanged',
    async ({ before, failures, delayMs }) => {
      // Prepare
      const broker = fakeBroker();
      const headers = before === undefined ? {} : { [INVOKE_FAILURES_HEADER]: before };
      const sent = message(alpha, { retries: 2, extraHeaders: headers });
      const executor = scriptedExecutor(() => {
        throw new Error('Rate Exceeded');
      });

      // Act
      const [event] = await dispatchBatch(broker, registry, [deliveryOf(sent)], executor, { now });

      // Assess
      const [item] = broker.settled();
      expect(item?.settlement).toEqual({
        kind: 'retry-later',
        message: { ...sent, extraHeaders: { [INVOKE_FAILURES_HEADER]: failures } },
        dueAt: new Date(NOW + delayMs),
      });
      expect(event?.outcome).toEqual({
        kind: 'invoke-failed',
        detail: 'Error: Rate Exceeded',
        failures,
        dead: false,
      });
    },
  );

  it('waits at most a minute between attempts to run a message', async () => {
    // Prepare
    const broker = fakeBroker();
    const sent = message(alpha, { extraHeaders: { [INVOKE_FAILURES_HEADER]: 10 } });
    const executor = scriptedExecutor(() => {
      throw new Error('down');
    });

    // Act
    await dispatchBatch(broker, registry, [deliveryOf(sent)], executor, { now, poisonCap: 50 });

    // Assess
    expect(broker.settled()[0]?.settlement).toMatchObject({ dueAt: new Date(NOW + 60_000) });
  });

  it.each([
    { cap: undefined, before: 4, says: 'the default cap of 5' },
    { cap: 2, before: 1, says: 'a cap of 2' },
    { cap: 2, before: 9, says: 'a cap passed long ago' },
  ])('dead-letters a message as poison at $says', async ({ cap, before }) => {
    // Prepare
    const broker = fakeBroker();
    const sent = message(alpha, { retries: 1, extraHeaders: { [INVOKE_FAILURES_HEADER]: before } });
    const executor = scriptedExecutor(() => {
      throw new TypeError('payload too large');
    });

    // Act
    const [event] = await dispatchBatch(broker, registry, [deliveryOf(sent)], executor, {
      now,
      ...(cap === undefined ? {} : { poisonCap: cap }),
    });

    // Assess
    expect(broker.settled()[0]?.settlement).toEqual({
      kind: 'dead-letter',
      reason: {
        reason: 'poison',
        detail: `could not be run ${before + 1} times; last: TypeError: payload too large`,
        task: 'app.alpha',
        id: sent.id,
        retries: 1,
        errorType: 'TypeError',
        errorMessage: 'payload too large',
      },
    });
    expect(event?.outcome).toMatchObject({ kind: 'invoke-failed', dead: true });
  });

  it.each([
    ['too few', [] as TaskOutcome[]],
    ['too many', [SUCCEEDED, SUCCEEDED, SUCCEEDED]],
  ])('treats %s outcomes from the executor as a failure to run the group', async (_, outcomes) => {
    // Prepare
    const broker = fakeBroker();
    const sent = [message(alpha), message(alpha)];

    // Act
    const events = await dispatchBatch(
      broker,
      registry,
      sent.map((m) => deliveryOf(m)),
      scriptedExecutor(() => outcomes),
      { now },
    );

    // Assess
    expect(events.map((event) => event.outcome)).toEqual([
      expect.objectContaining({ kind: 'invoke-failed', failures: 1, dead: false }),
      expect.objectContaining({ kind: 'invoke-failed', failures: 1, dead: false }),
    ]);
    for (const { settlement } of broker.settled()) {
      expect(settlement).toMatchObject({
        kind: 'retry-later',
        message: { retries: 0, extraHeaders: { [INVOKE_FAILURES_HEADER]: 1 } },
      });
    }
  });

  it("does not let one group's failure touch another group", async () => {
    // Prepare
    const broker = fakeBroker();
    const good = [message(beta), message(beta)];
    const bad = message(alpha);
    const executor = scriptedExecutor(async (task, messages) => {
      if (task === 'app.alpha') throw new Error('function crashed');
      return messages.map(() => SUCCEEDED);
    });

    // Act
    await dispatchBatch(
      broker,
      registry,
      [good[0], bad, good[1]].map((m) => deliveryOf(m as TaskMessage)),
      executor,
      {
        now,
      },
    );

    // Assess
    const byId = settlementsById(broker.settled());
    expect(byId.get(good[0]?.id ?? '')).toEqual({ kind: 'done' });
    expect(byId.get(good[1]?.id ?? '')).toEqual({ kind: 'done' });
    expect(byId.get(bad.id)).toMatchObject({ kind: 'retry-later' });
  });

  it('reports each message once, after the batch is settled', async () => {
    // Prepare
    const broker = fakeBroker();
    const seen: [WorkerEvent, number][] = [];
    const sent = [message(alpha), message(beta)];

    // Act
    const events = await dispatchBatch(
      broker,
      registry,
      sent.map((m) => deliveryOf(m)),
      scriptedExecutor((_, messages) => messages.map(() => SUCCEEDED)),
      { now, onOutcome: (event) => seen.push([event, broker.settleCalls.length]) },
    );

    // Assess
    expect(seen.map(([event]) => event)).toEqual(events);
    expect(seen.map(([, settleCallsSoFar]) => settleCallsSoFar)).toEqual([1, 1]);
    expect(events.map((event) => event.queue)).toEqual([QUEUE, QUEUE]);
  });

  it('fails when the broker cannot settle, reporting nothing as settled', async () => {
    // Prepare
    const broker = fakeBroker({ failWith: new Error('connection lost') });
    const seen: WorkerEvent[] = [];

    // Act
    const dispatched = dispatchBatch(
      broker,
      registry,
      [deliveryOf(message(alpha))],
      scriptedExecutor(() => [SUCCEEDED]),
      { now, onOutcome: (event) => seen.push(event) },
    );

    // Assess
    await expect(dispatched).rejects.toThrow('connection lost');
    expect(seen).toEqual([]);
  });
});

describe('settlementFor', () => {
  it('forgets earlier failures to run a message once its task ran and asked for a retry', () => {
    // Prepare
    const sent = message(alpha, { extraHeaders: { [INVOKE_FAILURES_HEADER]: 4, stamps: 'kept' } });
    const dueAt = new Date(NOW + 1_000).toISOString();

    // Act
    const settlement = settlementFor(
      { kind: 'retry', dueAt, errorType: 'E', errorMessage: 'm', durationMs: 0 },
      sent,
    );

    // Assess
    expect(settlement).toMatchObject({ kind: 'retry-later', message: { retries: 1 } });
    expect(settlement.kind === 'retry-later' && settlement.message.extraHeaders).toEqual({
      stamps: 'kept',
    });
  });

  it('keeps the failures to run a message it parks until its eta, unrun', () => {
    // Prepare
    const sent = message(alpha, { extraHeaders: { [INVOKE_FAILURES_HEADER]: 2 } });

    // Act
    const settlement = settlementFor({ kind: 'not-due', dueAt: new Date(NOW).toISOString() }, sent);

    // Assess
    expect(settlement).toMatchObject({
      kind: 'retry-later',
      message: { extraHeaders: { [INVOKE_FAILURES_HEADER]: 2 } },
    });
  });

  it('keeps the workflow and priority of a message it retries', () => {
    // Prepare
    const sent = message(alpha, { priority: 7, rootId: 'root-1' });
    const dueAt = new Date(NOW + 1_000).toISOString();

    // Act
    const settlement = settlementFor(
      { kind: 'retry', dueAt, errorType: 'E', errorMessage: 'm', durationMs: 0 },
      sent,
    );

    // Assess
    expect(settlement).toMatchObject({
      kind: 'retry-later',
      message: { priority: 7, rootId: 'root-1', retries: 1, embed: sent.embed },
    });
  });
});
