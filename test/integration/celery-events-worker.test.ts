/**
 * Proof that Celery's own monitoring follows the tasks our workers *run* with events on: a real
 * `app.events.Receiver` feeding `app.events.State()` (Celery 5.2.6, and 5.6.3 with
 * `CELERY56_PY`) watches the long-lived worker (`runLocalWorker`, what `worker --events` runs),
 * our publisher's `task-sent`, and the Lambda poller with its task functions invoked in this
 * process, on Redis (a throw-away server) and RabbitMQ (a throw-away vhost).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { createEventDispatcher } from '../../src/brokers/create-event-dispatcher.js';
import { main } from '../../src/cli/main.js';
import { type EventDispatcher, workerNodeName } from '../../src/core/event-dispatcher.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { createAmazonMqDispatcher } from '../../src/lambda/amazon-mq-dispatcher.js';
import { createPollerHandler } from '../../src/lambda/poller-handler.js';
import { createRuntime, type LambdaRuntime } from '../../src/lambda/runtime.js';
import { createPublisher } from '../../src/producer/publisher.js';
import { createCliApp } from '../fixtures-app/cli-app.js';
import { rmqEvent, rmqEventMessageOf } from '../helpers/amazon-mq-event.js';
import { PYTHON } from '../helpers/celery.js';
import { captureCeleryEvents, type StateDump, stopCaptures } from '../helpers/celery-events.js';
import { testContext } from '../helpers/cli.js';
import { deliveryOf, fakeBroker, fakeContext, inProcessInvoker } from '../helpers/lambda.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';
import { startLocalWorker } from '../helpers/worker.js';

const CELERY_VERSIONS = [
  { version: '5.2.6', python: PYTHON },
  ...(process.env.CELERY56_PY ? [{ version: '5.6.3', python: process.env.CELERY56_PY }] : []),
];

let redisServer: ThrowawayRedis;
let redisAdmin: Redis;
let vhost: TestVhost;
const closing: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  redisServer = await startThrowawayRedis();
  redisAdmin = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  vhost = await createTestVhost('events-worker');
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await stopCaptures();
  for (const each of closing.splice(0).reverse()) await each.close();
});

afterAll(async () => {
  await redisAdmin?.quit();
  await redisServer?.stop();
  await vhost?.remove();
});

const BROKERS = [
  { kind: 'redis', url: () => redisServer.url.replace(/\/0$/, '/3') },
  { kind: 'rabbitmq', url: () => vhost.url },
] as const;

class FlakyError extends Error {
  override name = 'FlakyError';
}

/** An app on a queue of its own: one task that succeeds, one that fails, one that retries. */
function app() {
  const queue = `ev-${randomUUID().slice(0, 8)}`;
  const add = defineTask({ name: 'ev.add', queue }, (_kwargs, { args }) =>
    (args as number[]).reduce((sum, n) => sum + n, 0),
  );
  const bad = defineTask({ name: 'ev.bad', queue }, () => {
    throw new TypeError('broken input');
  });
  // Parked a minute: its state stays RETRY for the whole capture.
  const flaky = defineTask(
    { name: 'ev.flaky', queue, retry: { on: [FlakyError] }, defaultRetryDelay: 60 },
    () => {
      throw new FlakyError('mail server timeout');
    },
  );
  const registry = createRegistry({ tasks: [add, bad, flaky], queues: [{ name: queue }] });
  return { queue, registry, add, bad, flaky };
}

function track<T extends { close(): Promise<unknown> }>(each: T): T {
  closing.push(each);
  return each;
}

/**
 * Starts receivers and waits until they listen: on RabbitMQ their queues are bound once they say
 * READY; on Redis, where an event nobody is subscribed to is lost, until each has `PSUBSCRIBE`d.
 */
async function listen(kind: string, broker: string, python: string, seconds: number[]) {
  const captures = seconds.map((each) => captureCeleryEvents({ broker, seconds: each, python }));
  await Promise.all(captures.map((capture) => capture.ready));
  const deadline = Date.now() + 10_000;
  while (kind === 'redis' && (await patternSubscribers()) < captures.length) {
    if (Date.now() > deadline) throw new Error('the receivers never subscribed');
    await sleep(50);
  }
  return captures.map((capture) => capture.result);
}

async function patternSubscribers(): Promise<number> {
  const clients = String(await redisAdmin.call('CLIENT', 'LIST')).split('\n');
  return clients.filter((line) => /\bpsub=[1-9]/.test(line)).length;
}

/** Event types `hostname` sent, in the order received. */
function typesFrom(state: StateDump, hostname: string): string[] {
  return state.events.filter((event) => event.hostname === hostname).map((event) => event.type);
}

describe.each(BROKERS)('on $kind', ({ kind, url }) => {
  describe.each(CELERY_VERSIONS)('Celery $version State', ({ python }) => {
    it('follows what our long-lived worker runs, and our producer sends', async () => {
      // Prepare: one receiver ends while the worker runs, the other after it stopped.
      const [whileRunning, afterStop] = await listen(kind, url(), python, [5, 9]);
      const { queue, registry, add, bad, flaky } = app();
      const broker: Broker = track(createBroker(url(), { queues: registry.queues }));
      const workerName = `celery@worker-${randomUUID().slice(0, 8)}`;
      const producerName = `ts${process.pid}@producer-${randomUUID().slice(0, 8)}`;
      const workerEvents = track(createEventDispatcher(url(), { hostname: workerName }));
      const producerEvents = track(createEventDispatcher(url(), { hostname: producerName }));
      const publisher = createPublisher(broker, { events: producerEvents });
      let settled = 0;
      const stop = startLocalWorker(broker, registry, {
        queues: [queue],
        events: workerEvents,
        onOutcome: () => {
          settled++;
        },
      });

      // Act
      const added = await publisher.applyAsync(add, { args: [2, 3] });
      const failed = await publisher.applyAsync(bad, { args: [7] });
      const retried = await publisher.applyAsync(flaky, { args: ['ops'] });
      while (settled < 3) await sleep(20);
      const running = await (whileRunning as Promise<StateDump>);
      await stop();
      const stopped = await (afterStop as Promise<StateDump>);

      // Assess
      expect(stopped.tasks[added]).toMatchObject({
        name: 'ev.add',
        state: 'SUCCESS',
        // Our producer's argsrepr: Python's repr, as a Python producer writes it.
        args: '[2, 3]',
        kwargs: '{}',
        result: '5',
        retries: 0,
        worker: workerName,
        client: producerName,
        routing_key: queue,
      });
      expect(stopped.tasks[added]?.runtime).toBeGreaterThanOrEqual(0);
      for (const field of ['sent', 'received', 'started', 'succeeded'] as const) {
        expect(stopped.tasks[added]?.[field]).toBeGreaterThan(1.7e9);
      }
      expect(stopped.tasks[failed]).toMatchObject({
        name: 'ev.bad',
        state: 'FAILURE',
        args: '[7]',
        exception: "TypeError('broken input')",
        worker: workerName,
      });
      expect(stopped.tasks[failed]?.traceback).toContain('TypeError: broken input');
      expect(stopped.tasks[retried]).toMatchObject({
        name: 'ev.flaky',
        state: 'RETRY',
        args: "['ops']",
        retries: 0,
        exception: "FlakyError('mail server timeout')",
      });
      // Alive while it beats; offline once stopped, its offline its last word.
      expect(running.workers[workerName]).toMatchObject({
        alive: true,
        freq: 2,
        sw_ident: 'serverless-celery',
        pid: process.pid,
      });
      expect(typesFrom(running, workerName)).toContain('worker-heartbeat');
      expect(stopped.workers[workerName]).toMatchObject({ alive: false, processed: 3, active: 0 });
      const sent = typesFrom(stopped, workerName);
      expect(sent[0]).toBe('worker-online');
      expect(sent.at(-1)).toBe('worker-offline');
      expect(typesFrom(stopped, producerName)).toEqual(['task-sent', 'task-sent', 'task-sent']);
    });

    it('follows what the Lambda poller runs in its task functions', async () => {
      // Prepare: the poller's environment is the worker, named after its function and log stream.
      const environment = randomUUID().replaceAll('-', '');
      vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'svc-dev-poller');
      vi.stubEnv('AWS_LAMBDA_LOG_STREAM_NAME', `2026/12/05/[$LATEST]${environment}`);
      const pollerName = `svc-dev-poller@${environment.slice(0, 12)}`;
      const [capture] = await listen(kind, url(), python, [6]);
      const { registry, add, bad, flaky } = app();
      const runtime: LambdaRuntime = createRuntime({ registry, broker: url(), events: true });
      track(runtime.broker());
      track(runtime.events?.() as EventDispatcher);
      const messages = [
        add.createMessage({ args: [1, 1] }),
        bad.createMessage({ args: [0] }),
        flaky.createMessage({}),
      ];
      await runtime.broker().publish(messages);
      const handler = createPollerHandler(runtime, {
        stopTakingAtMs: 1_000,
        client: inProcessInvoker(registry, { prefix: '' }),
        relay: false,
      });

      // Act: two invocations of one environment, the second draining until the capture ends.
      await handler({}, fakeContext({ remainingMs: 1_500 }));
      await handler({}, fakeContext({ remainingMs: 4_500 }));
      const state = await (capture as Promise<StateDump>);

      // Assess
      const [ok, failed, retried] = messages.map((message) => state.tasks[message.id]);
      expect(ok).toMatchObject({ name: 'ev.add', state: 'SUCCESS', args: '[1, 1]' });
      expect(ok?.worker).toBe(pollerName);
      expect(ok?.runtime).toBeGreaterThanOrEqual(0);
      expect(failed).toMatchObject({ state: 'FAILURE', exception: "TypeError('broken input')" });
      expect(retried).toMatchObject({
        state: 'RETRY',
        exception: "FlakyError('mail server timeout')",
      });
      const presence = typesFrom(state, pollerName).filter((type) => type.startsWith('worker-'));
      expect(presence[0]).toBe('worker-online');
      expect(presence.filter((type) => type === 'worker-online')).toHaveLength(1);
      expect(presence).not.toContain('worker-offline');
      expect(presence.filter((type) => type === 'worker-heartbeat').length).toBeGreaterThan(1);
      expect(state.workers[pollerName]).toMatchObject({ alive: true, processed: 3 });
    });
  });
});

describe.each(CELERY_VERSIONS)('Celery $version State, on Amazon MQ', ({ python }) => {
  it('follows what the Amazon MQ dispatcher runs in its task functions', async () => {
    // Prepare: the dispatcher's environment is the worker, named after its function.
    const environment = randomUUID().replaceAll('-', '');
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'svc-dev-dispatcher');
    // What the plugin sets on every function with custom.celery.events.
    vi.stubEnv('CELERY_EVENTS', 'true');
    vi.stubEnv('AWS_LAMBDA_LOG_STREAM_NAME', `2026/12/05/[$LATEST]${environment}`);
    const dispatcherName = `svc-dev-dispatcher@${environment.slice(0, 12)}`;
    const [capture] = await listen('rabbitmq', vhost.url, python, [5]);
    const { queue, registry, add, bad, flaky } = app();
    const runtime = createRuntime({ registry, broker: vhost.url, events: true });
    track(runtime.broker());
    track(runtime.events?.() as EventDispatcher);
    const messages = [
      add.createMessage({ args: [4, 5] }),
      bad.createMessage({ args: [0] }),
      flaky.createMessage({}),
    ];
    const dispatch = createAmazonMqDispatcher(runtime, {
      client: inProcessInvoker(registry, { prefix: '' }),
    });

    // Act: the event source's batch, as Lambda hands it to the function.
    const counts = await dispatch(
      rmqEvent({ [queue]: messages.map((message) => rmqEventMessageOf(message)) }),
      fakeContext(),
    );
    const state = await (capture as Promise<StateDump>);

    // Assess
    expect(counts).toMatchObject({ succeeded: 1, dead: 1, retry: 1 });
    const [ok, failed, retried] = messages.map((message) => state.tasks[message.id]);
    expect(ok).toMatchObject({ name: 'ev.add', state: 'SUCCESS', args: '[4, 5]', result: '9' });
    expect(ok?.worker).toBe(dispatcherName);
    expect(failed).toMatchObject({ state: 'FAILURE', exception: "TypeError('broken input')" });
    expect(retried).toMatchObject({
      state: 'RETRY',
      exception: "FlakyError('mail server timeout')",
    });
    // Online at its first invocation; a frozen environment beats no more, so State lets it expire.
    expect(typesFrom(state, dispatcherName)[0]).toBe('worker-online');
    expect(state.workers[dispatcherName]).toMatchObject({ sw_ident: 'serverless-celery' });
  });
});

describe('worker -E', () => {
  it('sends the events of what it runs on the broker it was given', async () => {
    // Prepare: the tasks come from a fake broker; the events go to the --broker URL.
    const cli = createCliApp({ queue: 'jobs', prefix: `cli${randomUUID().slice(0, 6)}` });
    const ok = cli.add.createMessage({ kwargs: { x: 1, y: 2 } });
    const bad = cli.fail.createMessage();
    const broker = fakeBroker({ batches: [[deliveryOf(ok), deliveryOf(bad)]] });
    const context = testContext({ registry: cli.registry, broker });
    const stdout = (text: string) => {
      context.stdout(text);
      if (context.out().split('\n').length - 1 === 2) context.shutdown('SIGTERM');
    };
    const [capture] = await listen('redis', BROKERS[0].url(), PYTHON, [5]);

    // Act
    const code = await main(['worker', '-E', '--broker', BROKERS[0].url()], { ...context, stdout });
    const state = await (capture as Promise<StateDump>);

    // Assess
    expect(code).toBe(0);
    expect(state.tasks[ok.id]).toMatchObject({ state: 'SUCCESS', worker: workerNodeName() });
    expect(state.tasks[bad.id]?.state).toBe('FAILURE');
    expect(typesFrom(state, workerNodeName()).at(-1)).toBe('worker-offline');
  });
});
