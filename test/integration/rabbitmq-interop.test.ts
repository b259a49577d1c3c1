/**
 * Proof against real Python Celery 5.2.6 over AMQP (py-amqp 5.1.1, RabbitMQ), both directions:
 * `send.py` produces and our local worker consumes; our producer publishes and `worker.py` (a
 * real Celery worker) consumes; and a retry our consumer decides travels through the delay levels
 * with nothing holding it in between.
 *
 * One throw-away vhost for the file (deleted afterwards, with every queue, exchange and delay
 * level in it), one queue per test.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { createRetryMessage } from '../../src/core/message.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { runLocalWorker, type WorkerEvent } from '../../src/worker/local-worker.js';
import {
  createFixtureApp,
  DO_WORK,
  type FixtureApp,
  type RunRecord,
} from '../fixtures-app/registry.js';
import {
  type CeleryRecord,
  type CeleryRunRecord,
  sendCeleryTasks,
  startCeleryWorker,
  stopCeleryWorkers,
} from '../helpers/celery.js';
import { createTestVhost, listQueues, type TestVhost } from '../helpers/rabbitmq.js';

/** `x-max-priority` of the priority tests, declared alike by Python and by us. */
const MAX_PRIORITY = 9;

let vhost: TestVhost;
let queue: string;
let brokers: Broker[];
let consumers: RunningConsumer[];
let runs: RunRecord[];
let app: FixtureApp;

beforeAll(async () => {
  vhost = await createTestVhost();
});

afterAll(async () => {
  await vhost.remove();
});

beforeEach(() => {
  queue = `sc-interop-${randomUUID()}`;
  brokers = [];
  consumers = [];
  runs = [];
  app = createFixtureApp({ queue, record: (run) => void runs.push(run) });
});

afterEach(async () => {
  await stopCeleryWorkers();
  await Promise.allSettled(consumers.map((consumer) => consumer.stop()));
  await Promise.all(brokers.map((broker) => broker.close()));
});

/** A broker on the test vhost that the test closes in `afterEach`. */
function newBroker(registry: Registry = app.registry): Broker {
  const broker = createBroker(
    { kind: 'rabbitmq', url: vhost.url },
    { queues: registry.queues, logger: { warn: () => undefined } },
  );
  brokers.push(broker);
  return broker;
}

/** The fixture app's task on a queue declared with `x-max-priority`, as `--max-priority` does. */
function priorityRegistry(): Registry {
  return createRegistry({
    tasks: [app.doWork],
    queues: [{ name: queue, maxPriority: MAX_PRIORITY }],
  });
}

/** Our local worker, running in the background until stopped. */
interface RunningConsumer {
  /** Every settled message, in settling order. */
  readonly events: WorkerEvent[];
  /** Resolves once `done(events)` holds; fails the test after `timeoutMs`. */
  until(done: (events: readonly WorkerEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops the worker (it settles what it holds first) and rethrows its failure, if any. */
  stop(): Promise<void>;
}

function startConsumer(
  options: { registry?: Registry; concurrency?: number } = {},
): RunningConsumer {
  const registry = options.registry ?? app.registry;
  const broker = newBroker(registry);
  const events: WorkerEvent[] = [];
  const controller = new AbortController();
  let failure: unknown;
  const worker = runLocalWorker(broker, registry, {
    queues: [queue],
    concurrency: options.concurrency ?? 10,
    waitMs: 200,
    signal: controller.signal,
    onOutcome: (event) => events.push(event),
  }).catch((error: unknown) => {
    failure = error;
  });
  const consumer: RunningConsumer = {
    events,
    async until(done, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(events) && failure === undefined && Date.now() < deadline) await sleep(50);
      if (failure !== undefined) throw failure;
      if (!done(events)) expect.fail(`consumer timed out; runs: ${JSON.stringify(runs)}`);
    },
    async stop() {
      controller.abort();
      await worker;
      if (failure !== undefined) throw failure;
    },
  };
  consumers.push(consumer);
  return consumer;
}

/** Runs our local worker until `done(events)` holds, then stops it. */
async function consume(
  done: (events: readonly WorkerEvent[]) => boolean,
  options: { registry?: Registry; concurrency?: number; timeoutMs?: number } = {},
): Promise<WorkerEvent[]> {
  const consumer = startConsumer(options);
  await consumer.until(done, options.timeoutMs);
  await consumer.stop();
  return consumer.events;
}

function runOf(id: string): RunRecord {
  const run = runs.find((candidate) => candidate.id === id);
  if (!run) expect.fail(`task ${id} did not run; runs: ${JSON.stringify(runs)}`);
  return run;
}

function outcomesOf(events: readonly WorkerEvent[], id: string): string[] {
  return events
    .filter((event) => event.delivery.result.ok && event.delivery.result.message.id === id)
    .map((event) => event.outcome.kind);
}

function runsIn(records: readonly CeleryRecord[]): CeleryRunRecord[] {
  return records.filter((record): record is CeleryRunRecord => record.event === 'run');
}

function celeryRunOf(records: readonly CeleryRecord[], id: string, retries = 0): CeleryRunRecord {
  const run = runsIn(records).find(
    (candidate) => candidate.id === id && candidate.retries === retries,
  );
  if (!run) expect.fail(`Celery did not run ${id}#${retries}; records: ${JSON.stringify(records)}`);
  return run;
}

/**
 * Where this test's messages are, broker-side: ready and unacknowledged in the work queue
 * (`rabbitmqctl`, which sees every consumer's holds), and waiting in the delay levels (a passive
 * declare: `rabbitmqctl` showed 0 ready for the quorum delay levels while a message sat in one).
 */
async function whereMessagesAre(): Promise<{ ready: number; unacked: number; delayed: number }> {
  const [listed, stats] = await Promise.all([listQueues(vhost.name), newBroker().stats(queue)]);
  const work = listed.find((candidate) => candidate.name === queue);
  return {
    ready: stats.ready,
    unacked: work?.messages_unacknowledged ?? Number.NaN,
    delayed: stats.delayed,
  };
}

describe('Python Celery produces over AMQP, our worker consumes', () => {
  it('runs a plain task sent by Python with its args, kwargs and identity', async () => {
    // Prepare
    const args = [1, 'two', { three: 3 }];
    const kwargs = { user_id: 42, tags: ['a', 'b'] };
    const [sent] = await sendCeleryTasks({ broker: vhost.url, queue, args, kwargs });
    if (!sent) expect.fail('send.py sent nothing');

    // Act
    const events = await consume(() => runs.length >= 1);

    // Assess
    expect(runs).toEqual([
      expect.objectContaining({
        id: sent.id,
        task: DO_WORK,
        args,
        kwargs,
        retries: 0,
        eta: null,
        expires: null,
        rootId: sent.id,
        parentId: null,
        redelivered: false,
      }),
    ]);
    expect(outcomesOf(events, sent.id)).toEqual(['succeeded']);
    expect(await newBroker().stats(queue)).toEqual({
      queue,
      ready: 0,
      unacked: 0,
      delayed: 0,
      deadLettered: 0,
    });
  });

  it('parks Python countdown and eta tasks in the delay levels and runs them once due', async () => {
    // Prepare: the consumer runs before anything is sent, so each message is received before its
    // eta however long a Python start takes on a loaded machine (over 2 s in one Redis run); the
    // delays leave time for a slow rabbitmqctl to see both parked (a 3 s countdown had come due
    // by then at a load average of 7).
    const consumer = startConsumer();
    const sendStart = Date.now();
    const [byCountdown] = await sendCeleryTasks({
      broker: vhost.url,
      queue,
      args: ['countdown'],
      kwargs: { via: 'countdown' },
      countdown: 6,
    });
    const sendEnd = Date.now();
    const eta = new Date(Date.now() + 7_000);
    const [byEta] = await sendCeleryTasks({ broker: vhost.url, queue, args: ['eta'], eta });
    if (!byCountdown || !byEta) expect.fail('send.py sent nothing');

    // Act
    await consumer.until(
      (events) => events.filter((event) => event.outcome.kind === 'not-due').length >= 2,
    );
    const parked = await whereMessagesAre();
    await consumer.until(() => runs.length >= 2);
    await consumer.stop();

    // Assess
    // Received at once, acked only once republished into the delay levels, run when due.
    expect(parked).toEqual({ ready: 0, unacked: 0, delayed: 2 });
    expect(outcomesOf(consumer.events, byCountdown.id)).toEqual(['not-due', 'succeeded']);
    expect(outcomesOf(consumer.events, byEta.id)).toEqual(['not-due', 'succeeded']);
    const countdownRun = runOf(byCountdown.id);
    const countdownEta = Date.parse(countdownRun.eta ?? '');
    expect(countdownEta).toBeGreaterThanOrEqual(sendStart + 6000);
    expect(countdownEta).toBeLessThanOrEqual(sendEnd + 6000);
    expect(countdownRun).toMatchObject({ args: ['countdown'], kwargs: { via: 'countdown' } });
    const etaRun = runOf(byEta.id);
    expect(etaRun.eta).toBe(eta.toISOString());
    expect(etaRun.args).toEqual(['eta']);
    // Whole seconds, rounded up: never early, at most about a second late.
    for (const [run, due] of [
      [countdownRun, countdownEta],
      [etaRun, eta.getTime()],
    ] as const) {
      expect(run.ranAt).toBeGreaterThanOrEqual(due);
      expect(run.ranAt - due).toBeLessThan(1500);
    }
    expect(runs).toHaveLength(2);
  });

  it('dead-letters a Python task whose expires passed before its eta, with the reason expired', async () => {
    // Prepare: the consumer runs first, so RabbitMQ's own `expiration` TTL (which send.py sets
    // from expires and which drops the message silently) never fires in the work queue.
    const consumer = startConsumer();
    const [expiring] = await sendCeleryTasks({
      broker: vhost.url,
      queue,
      args: ['too-late'],
      countdown: 2,
      expires: 1,
    });
    const [fresh] = await sendCeleryTasks({
      broker: vhost.url,
      queue,
      args: ['in-time'],
      expires: 60,
    });
    if (!expiring || !fresh) expect.fail('send.py sent nothing');

    // Act
    await consumer.until((events) => outcomesOf(events, expiring.id).includes('dead'));
    await consumer.stop();

    // Assess
    expect(runs.map((run) => run.id)).toEqual([fresh.id]);
    expect(Date.parse(runOf(fresh.id).expires ?? '')).toBeGreaterThan(Date.now());
    expect(outcomesOf(consumer.events, expiring.id)).toEqual(['not-due', 'dead']);
    const deadLetters = await newBroker().deadLetters(queue, 10);
    expect(deadLetters).toEqual([
      expect.objectContaining({ reason: 'expired', id: expiring.id, task: DO_WORK, queue }),
    ]);
    expect(JSON.parse(deadLetters[0]?.raw ?? '')).toEqual([
      ['too-late'],
      {},
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);
  });

  it('never sees a Python task whose expires lapsed while it waited in the queue', async () => {
    // Prepare: send.py also sets the AMQP `expiration` property from expires; Celery's queue
    // has no dead-letter exchange (and must not get one, or declarations differ), so RabbitMQ
    // drops the message itself, as it would for a Celery worker.
    const [lapsed] = await sendCeleryTasks({
      broker: vhost.url,
      queue,
      args: ['lapsed'],
      expires: 1,
    });
    if (!lapsed) expect.fail('send.py sent nothing');
    await sleep(1200);

    // Act
    const consumer = startConsumer();
    await sleep(1000);
    await consumer.stop();

    // Assess
    expect(consumer.events).toEqual([]);
    expect(runs).toEqual([]);
    expect(await newBroker().stats(queue)).toMatchObject({ ready: 0, deadLettered: 0 });
  });

  it('runs Python tasks on a max-priority queue highest priority first', async () => {
    // Prepare: send.py declares the queue with x-max-priority, and so does our registry.
    for (const priority of [1, 5, 9, 0]) {
      await sendCeleryTasks({
        broker: vhost.url,
        queue,
        args: [`p${priority}`],
        priority,
        maxPriority: MAX_PRIORITY,
      });
    }

    // Act
    await consume(() => runs.length >= 4, { registry: priorityRegistry(), concurrency: 1 });

    // Assess
    expect(runs.map((run) => run.args)).toEqual([['p9'], ['p5'], ['p1'], ['p0']]);
  });

  it('runs the retry message a real Celery worker published, as retry 1 of its task', async () => {
    // Prepare: the Python task raises once; Celery's Task.retry publishes the retry message,
    // and the warm shutdown closes the channel, which hands back its hold on it before it is due.
    const worker = await startCeleryWorker({ broker: vhost.url, queue, retryDelay: 3 });
    const kwargs = { interop_raise: 'retry', interop_raise_times: 1 };
    const [sent] = await sendCeleryTasks({ broker: vhost.url, queue, args: ['retry-me'], kwargs });
    if (!sent) expect.fail('send.py sent nothing');
    await worker.waitForRecords((records) =>
      records.some((record) => record.event === 'outcome' && record.state === 'RETRY'),
    );
    await worker.stop('SIGTERM');
    const pythonRuns = worker.runs();
    expect(pythonRuns.map((run) => run.retries)).toEqual([0]);
    const firstRunMs = (pythonRuns[0]?.recorded_at_unix ?? 0) * 1000;

    // Act
    const events = await consume(() => runs.length >= 1);

    // Assess
    const retried = runOf(sent.id);
    expect(retried).toMatchObject({
      args: ['retry-me'],
      kwargs,
      retries: 1,
      parentId: sent.id,
      rootId: sent.id,
    });
    const eta = Date.parse(retried.eta ?? '');
    // Celery's eta is now + retry delay, taken just after the first run (microseconds, cut to ms).
    expect(eta).toBeGreaterThanOrEqual(Math.floor(firstRunMs) + 3000 - 1);
    expect(retried.ranAt).toBeGreaterThanOrEqual(eta);
    expect(outcomesOf(events, sent.id).at(-1)).toBe('succeeded');
    expect(runs).toHaveLength(1);
  });
});

describe('our producer publishes over AMQP, a real Celery worker consumes', () => {
  it('has Celery run our plain and child tasks with their identity and time limits', async () => {
    // Prepare: a producer-side declaration of the same task with time limits, so `timelimit`
    // carries integers above 127 (amqplib would write them as `s`, which py-amqp misreads).
    const limited = defineTask(
      { name: DO_WORK, queue, timeLimit: 300, softTimeLimit: 200 },
      () => undefined,
    );
    const plain = limited.createMessage({
      args: [1, 'two', { three: 3 }],
      kwargs: { user_id: 42, big: 2 ** 40 },
    });
    const child = app.doWork.createMessage({
      args: ['child'],
      parentId: plain.id,
      rootId: plain.id,
    });
    await newBroker().publish([plain, child]);

    // Act
    const worker = await startCeleryWorker({ broker: vhost.url, queue });
    const records = await worker.waitForRecords(
      (current) => current.filter((record) => record.event === 'outcome').length >= 2,
    );

    // Assess
    const outcomes = records.filter((record) => record.event === 'outcome');
    expect(outcomes.map((record) => record.state)).toEqual(['SUCCESS', 'SUCCESS']);
    expect(celeryRunOf(records, plain.id)).toMatchObject({
      task: DO_WORK,
      args: [1, 'two', { three: 3 }],
      kwargs: { user_id: 42, big: 2 ** 40 },
      retries: 0,
      eta: null,
      root_id: plain.id,
      parent_id: null,
      lang: 'ts',
      timelimit: [300, 200],
      delivery_info: { exchange: '', routing_key: queue, priority: 0 },
    });
    expect(celeryRunOf(records, child.id)).toMatchObject({
      args: ['child'],
      root_id: plain.id,
      parent_id: plain.id,
      timelimit: [null, null],
    });
  });

  it('has Celery run our countdown task when the delay levels hand it over, not before its eta', async () => {
    // Prepare
    const worker = await startCeleryWorker({ broker: vhost.url, queue });
    // 5 s: on a loaded machine the two reads of whereMessagesAre (rabbitmqctl) took long enough
    // for a 2 s countdown to come due, and the Celery worker held the message by then.
    const later = app.doWork.createMessage({
      args: ['later'],
      kwargs: { user_id: 7 },
      countdown: 5,
    });

    // Act
    await newBroker().publish([later]);
    const waiting = await whereMessagesAre();
    const records = await worker.waitForRecords((current) =>
      current.some((record) => record.event === 'outcome'),
    );

    // Assess
    // Not in the work queue and not held by the Celery worker: waiting in a delay level.
    expect(waiting).toEqual({ ready: 0, unacked: 0, delayed: 1 });
    const run = celeryRunOf(records, later.id);
    const eta = later.eta?.getTime() ?? Number.NaN;
    expect(run).toMatchObject({ args: ['later'], kwargs: { user_id: 7 }, retries: 0 });
    expect(Date.parse(run.eta ?? '')).toBe(eta);
    expect(run.recorded_at_unix * 1000).toBeGreaterThanOrEqual(eta);
    expect(run.recorded_at_unix * 1000 - eta).toBeLessThan(1500);
    // It reached the queue through the delay levels: whole seconds in 28 binary digits, then
    // the queue name (5 s, or 4 s if declaring the levels took over a second of the countdown).
    const { exchange, routing_key: routingKey } = run.delivery_info;
    expect(exchange).toMatch(/^celery_delayed_/);
    expect(routingKey).toMatch(new RegExp(`^([01]\\.){28}${queue}$`));
    expect([4, 5]).toContain(Number.parseInt(routingKey.slice(0, 56).replaceAll('.', ''), 2));
  });

  it('has Celery run our tasks on a max-priority queue highest priority first', async () => {
    // Prepare: our registry and worker.py both declare the queue with x-max-priority.
    const messages = [0, 9, 5, 0].map((priority, index) =>
      app.doWork.createMessage({ args: [`p${priority}-${index}`], priority }),
    );
    await newBroker(priorityRegistry()).publish(messages);

    // Act
    const worker = await startCeleryWorker({ broker: vhost.url, queue, maxPriority: MAX_PRIORITY });
    const records = await worker.waitForRecords((current) => runsIn(current).length >= 4);

    // Assess
    expect(runsIn(records).map((run) => run.args[0])).toEqual(['p9-1', 'p5-2', 'p0-0', 'p0-3']);
    expect(runsIn(records).map((run) => run.delivery_info.priority)).toEqual([9, 5, 0, 0]);
  });

  it('has Celery run our retry message at its eta, then retry it again itself', async () => {
    // Prepare: the retry of a message that was received from the queue, as our consumer makes
    // it; the Python task raises once more (retries 1 < 2), so Celery's Task.retry follows.
    const worker = await startCeleryWorker({ broker: vhost.url, queue, retryDelay: 2 });
    const kwargs = { attempt: 1, interop_raise: 'retry', interop_raise_times: 2 };
    const original = app.doWork.createMessage({ args: ['retry-me'], kwargs });
    const dueAt = new Date(Date.now() + 1500);
    const retry = createRetryMessage(original, dueAt);

    // Act
    await newBroker().publish([retry]);
    await worker.waitForRecords((current) =>
      current.some((record) => record.event === 'outcome' && record.state === 'RETRY'),
    );
    const pythonRetryWaiting = await whereMessagesAre();
    const records = await worker.waitForRecords((current) =>
      current.some((record) => record.event === 'outcome' && record.state === 'SUCCESS'),
    );

    // Assess
    const ours = celeryRunOf(records, original.id, 1);
    expect(ours).toMatchObject({
      args: ['retry-me'],
      kwargs,
      retries: 1,
      root_id: original.id,
      parent_id: original.id,
    });
    expect(Date.parse(ours.eta ?? '')).toBe(dueAt.getTime());
    expect(ours.recorded_at_unix * 1000).toBeGreaterThanOrEqual(dueAt.getTime());
    expect(ours.delivery_info.exchange).toMatch(/^celery_delayed_/);
    const celerys = celeryRunOf(records, original.id, 2);
    expect(celerys).toMatchObject({
      args: ['retry-me'],
      kwargs,
      root_id: original.id,
      parent_id: original.id,
      lang: 'py',
    });
    expect(celerys.recorded_at_unix * 1000).toBeGreaterThanOrEqual(Date.parse(celerys.eta ?? ''));
    // Celery 5.2 re-publishes a retry to the exchange and routing key it received the message
    // with: here a delay level's exchange and the old binary key, whose low bits are all 0 past
    // the last level it waited in. So the retry goes straight back to the queue, and the Celery
    // worker holds it unacknowledged until its eta, as it holds any eta message.
    expect(celerys.delivery_info).toMatchObject({
      exchange: ours.delivery_info.exchange,
      routing_key: ours.delivery_info.routing_key,
    });
    expect(pythonRetryWaiting).toEqual({ ready: 0, unacked: 1, delayed: 0 });
    expect(
      records.filter((record) => record.event === 'outcome').map((record) => record.state),
    ).toEqual(['RETRY', 'SUCCESS']);
  });
});

describe('our consumer retries through the delay levels', () => {
  it('runs a retried task again after its delay as retries + 1, with nothing holding it meanwhile', async () => {
    // Prepare
    class FlakyError extends Error {
      override name = 'FlakyError';
    }
    const flakyRuns: { retries: number; parentId: string | null; eta: Date | null; at: number }[] =
      [];
    const flaky = defineTask(
      { name: 'interop.flaky', queue, retry: { on: [FlakyError] }, defaultRetryDelay: 2 },
      (_kwargs, ctx) => {
        flakyRuns.push({
          retries: ctx.retries,
          parentId: ctx.parentId,
          eta: ctx.eta,
          at: Date.now(),
        });
        if (ctx.retries === 0) throw new FlakyError('first attempt fails');
        return { ok: true };
      },
    );
    const registry = createRegistry({ tasks: [flaky], queues: [{ name: queue }] });
    const message = flaky.createMessage({ args: ['flaky'] });
    await newBroker(registry).publish([message]);

    // Act
    const consumer = startConsumer({ registry });
    await consumer.until((events) => events.some((event) => event.outcome.kind === 'retry'));
    const retried = consumer.events.find((event) => event.outcome.kind === 'retry')?.outcome;
    if (retried?.kind !== 'retry') expect.fail('no retry outcome');
    const dueAt = new Date(retried.dueAt).getTime();
    const meanwhile = await whereMessagesAre();
    await consumer.until(() => flakyRuns.length >= 2);
    await consumer.stop();

    // Assess
    expect(meanwhile).toEqual({ ready: 0, unacked: 0, delayed: 1 });
    expect(outcomesOf(consumer.events, message.id)).toEqual(['retry', 'succeeded']);
    const [first, second] = flakyRuns;
    expect(first).toMatchObject({ retries: 0, parentId: null, eta: null });
    expect(second).toMatchObject({ retries: 1, parentId: message.id });
    expect(second?.eta?.getTime()).toBe(dueAt);
    expect(second?.at).toBeGreaterThanOrEqual(dueAt);
    expect((second?.at ?? 0) - dueAt).toBeLessThan(1500);
  });
});
