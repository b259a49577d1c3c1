/**
 * Lambda path: how fast tasks flow through the functions that feed Lambda, run here with the
 * real handlers and a stand-in for Lambda itself (bench/lambda/stand-in.ts: a fixed 15 ms per
 * invoke, then the task's real `createTaskHandler` in this process).
 *
 * - Redis poller: N messages queued in Redis, then one invocation of `createPollerHandler`,
 *   whose fake context says "15 minutes left" until all N are answered (or the wall-time cap
 *   passes), then "none", so the poller stops taking and settles what it holds. Rate: messages
 *   settled ÷ (last answer − handler start);
 * - Amazon MQ dispatcher: N messages published to RabbitMQ, taken off the queue and framed as
 *   `aws:rmq` events of 100 (as the event source frames them), fed to `createAmazonMqDispatcher`
 *   one at a time, as the event source feeds one queue; each acknowledged once dispatched. Rate:
 *   messages dispatched ÷ time in the dispatcher; CPU per message of the no-op runs;
 * - serverless-offline: the Redis poller again, invoking a no-op task function through
 *   serverless-offline's Lambda endpoint (as `npm start` does), on free ports;
 * - head of line (bench/lambda/head-of-line.ts): the local worker at concurrency 10, a 5 s task,
 *   then 3 quick ones 0.5 s later: how long after their publish they finish, minus their own run
 *   time.
 *
 * Every case stops at a wall-time cap (a loop that dispatches one batch at a time would take minutes
 * to drain N) and reports
 * the rate of what settled by then; "invokes in flight" are counted by the invoker.
 *
 *   lambda-path.ts [redis|amqp|offline|local]     one section only
 */
import { type ConsumeMessage, connect } from 'amqplib';
import { createBroker } from '../src/brokers/create-broker.js';
import { toRmqEvent, vhostOf } from '../src/cli/local-amazon-mq-event.js';
import { createRegistry } from '../src/core/registry.js';
import { defineTask } from '../src/core/task.js';
import { createAmazonMqDispatcher } from '../src/lambda/amazon-mq-dispatcher.js';
import { createPollerHandler } from '../src/lambda/poller-handler.js';
import { createRuntime } from '../src/lambda/runtime.js';
import {
  AMQP_URL,
  cleanQueue,
  createVhost,
  type Figure,
  log,
  measure,
  median,
  NOOP_TASK,
  nowMs,
  REDIS_URL,
  round,
  runScript,
  SCALE,
  scaled,
  sleep,
  waitUntil,
} from './harness.js';
import {
  HEAD_OF_LINE_CONCURRENCY,
  headOfLine,
  LONG_TASK_MS,
  QUICK_AFTER_MS,
  QUICK_TASKS,
} from './lambda/head-of-line.js';
import { withOffline } from './lambda/offline.js';
import {
  countdownContext,
  fakeContext,
  INVOKE_OVERHEAD_MS,
  lambdaStandIn,
  type MeteredInvoker,
  meteredInvoker,
} from './lambda/stand-in.js';

/** Invokes in flight at once, and messages per invoke: the streaming loop's defaults. */
const MAX_IN_FLIGHT = 100;
const INVOKE_BATCH_SIZE = 10;
/** The poller's and the dispatcher's options: up to 100 invokes of up to 10 messages in flight. */
const POLLER_OPTIONS = { maxInFlight: MAX_IN_FLIGHT, invokeBatchSize: INVOKE_BATCH_SIZE };
const DISPATCHER_OPTIONS = { maxInFlight: MAX_IN_FLIGHT, invokeBatchSize: INVOKE_BATCH_SIZE };
/**
 * No drain relay: the bench invokes the poller several times a minute, and the relay's default
 * store is BROKER_URL's, not the bench's database.
 */
const NO_RELAY = { relay: false } as const;

/** The no-op, 100 ms and 1 s tasks, with N per path sized for a few seconds at the goals. */
const TASK_CASES = [
  { name: 'noop', ms: 0, label: 'no-op tasks', redisN: 15_000, amqpN: 15_000 },
  { name: '100ms', ms: 100, label: '100 ms tasks', redisN: 10_000, amqpN: 2_500 },
  { name: '1s', ms: 1000, label: '1 s tasks', redisN: 3_000, amqpN: 500 },
] as const;
/** Longest a case runs (a batch-at-a-time loop would take minutes to drain N). */
const CAP_MS = Math.max(2_000, 5_000 * SCALE);
/** The poller's timeout in serverless.yml: the remaining time its context reports while running. */
const POLLER_TIMEOUT_MS = 900_000;
/** Messages per `aws:rmq` event. */
const EVENT_SIZE = 100;

/** An app of one task on its own queue; `ms` > 0 makes it sleep that long. */
function appOf(queue: string, ms: number) {
  const task =
    ms === 0
      ? defineTask({ name: NOOP_TASK, queue, maxRetries: 0 }, () => undefined)
      : defineTask({ name: `bench.sleep_${ms}ms`, queue, maxRetries: 0 }, () => sleep(ms));
  return { task, registry: createRegistry({ tasks: [task], queues: [{ name: queue }] }) };
}

/** Publishes `n` messages of `task` in batches of 1000. */
async function fill(url: string, app: ReturnType<typeof appOf>, n: number): Promise<void> {
  const broker = createBroker(url, { queues: app.registry.queues });
  try {
    for (let index = 0; index < n; index += 1000) {
      const count = Math.min(1000, n - index);
      await broker.publish(Array.from({ length: count }, () => app.task.createMessage()));
    }
  } finally {
    await broker.close();
  }
}

/** One run of a path: its rate and what its invoker saw. */
interface PathRun {
  readonly rate: number;
  readonly settled: number;
  readonly maxInFlight: number;
  /** Most messages in one invoke. */
  readonly maxBatch: number;
}

/** What a path's figure says besides its rate. */
interface PathFigure {
  readonly id: string;
  readonly broker: 'redis' | 'amqp';
  readonly label: string;
  /** Messages per run. */
  readonly n: number;
  /** Added to the note. */
  readonly extra?: string;
  /** False when the invokes go to a real endpoint (no stand-in overhead to name). */
  readonly standIn?: boolean;
}

/**
 * Measures a path's rate over BENCH_RUNS runs; the note gives each run's peak of invokes in
 * flight, the largest invoke, and what settled when the cap cut a run short.
 */
async function measurePath(
  { extra = '', standIn = true, ...path }: PathFigure,
  runOnce: (run: number, n: number) => Promise<PathRun>,
): Promise<Figure> {
  const { n } = path;
  const runs: PathRun[] = [];
  const figure = await measure(
    { ...path, system: 'ours', settings: 'default', unit: 'tasks/s' },
    async (run) => {
      const result = await runOnce(run, n);
      runs.push(result);
      return result.rate;
    },
  );
  const peaks = runs.map((run) => run.maxInFlight).join(', ');
  const batch = Math.max(...runs.map((run) => run.maxBatch));
  const overhead = standIn ? `, ${INVOKE_OVERHEAD_MS} ms each` : '';
  const capped = runs.some((run) => run.settled < n)
    ? `; ${CAP_MS / 1000} s cap, settled ${runs.map((run) => run.settled).join(', ')}`
    : '';
  return {
    ...figure,
    note: `invokes in flight at most ${peaks}, of ≤ ${batch} messages${overhead}${capped}${extra}`,
  };
}

/** Drains `app`'s queue with one invocation of the real poller handler, invoking `invoker`. */
async function drainWithPoller(
  app: ReturnType<typeof appOf>,
  invoker: MeteredInvoker,
  n: number,
): Promise<PathRun> {
  const queue = app.task.options.queue;
  await fill(REDIS_URL, app, n);
  const runtime = createRuntime({ registry: app.registry, broker: REDIS_URL });
  try {
    await runtime.broker().stats(queue);
    const { meter } = invoker;
    const handler = createPollerHandler(runtime, {
      client: invoker,
      queues: [queue],
      ...POLLER_OPTIONS,
      ...NO_RELAY,
    });
    const started = nowMs();
    const deadline = started + CAP_MS;
    // Time runs out once every message is answered or the cap has passed: the poller then
    // stops taking and settles what it holds, as before its real timeout.
    const context = fakeContext('bench-poller', () =>
      meter.answered >= n || nowMs() > deadline ? 0 : POLLER_TIMEOUT_MS,
    );
    const result = await handler({}, context);
    const { settled } = result;
    if (settled === 0 || settled !== meter.answered || meter.unexpected > 0) {
      throw new Error(
        `poller answered ${JSON.stringify(result)}; ${meter.answered} answered by the functions, ${meter.unexpected} not succeeded`,
      );
    }
    const seconds = (meter.lastAnsweredAt - started) / 1000;
    return {
      rate: settled / seconds,
      settled,
      maxInFlight: meter.maxInFlight,
      maxBatch: meter.maxBatch,
    };
  } finally {
    await runtime.broker().close();
    await cleanQueue('redis', queue);
  }
}

/** CPU per message of the no-op dispatcher runs, whole process and Lambda's side of it (µs). */
const dispatcherCpu: { process: number[]; lambda: number[] } = { process: [], lambda: [] };

/** Takes `n` messages of `queue` as the event source would and feeds them in events of 100. */
async function dispatchEvents(app: ReturnType<typeof appOf>, n: number): Promise<PathRun> {
  const queue = app.task.options.queue;
  await fill(AMQP_URL, app, n);
  const connection = await connect(AMQP_URL);
  const runtime = createRuntime({ registry: app.registry, broker: AMQP_URL });
  try {
    const channel = await connection.createChannel();
    const taken: ConsumeMessage[] = [];
    await channel.consume(queue, (message) => message && taken.push(message), { noAck: false });
    await waitUntil(async () => taken.length >= n, 60_000, `${n} messages of ${queue}`);
    const vhost = vhostOf(AMQP_URL);
    const events = [];
    for (let index = 0; index < n; index += EVENT_SIZE) {
      const batch = taken.slice(index, index + EVENT_SIZE);
      events.push({
        event: toRmqEvent(queue, vhost, batch),
        last: batch.at(-1),
        size: batch.length,
      });
    }
    // Connected before the clock starts, as a warm dispatcher is.
    await runtime.broker().stats(queue);
    const standIn = lambdaStandIn(app.registry);
    const dispatcher = createAmazonMqDispatcher(runtime, {
      client: standIn,
      ...DISPATCHER_OPTIONS,
    });
    let settled = 0;
    const cpu = process.cpuUsage();
    const started = nowMs();
    for (const { event, last, size } of events) {
      if (nowMs() - started > CAP_MS) break;
      const counts = await dispatcher(event, countdownContext('bench-dispatcher', 90_000));
      if (counts.succeeded !== size)
        throw new Error(`dispatcher answered ${JSON.stringify(counts)}`);
      // What the event source does once the function returned: acknowledge the batch.
      if (last) channel.ack(last, true);
      settled += size;
    }
    const seconds = (nowMs() - started) / 1000;
    const spent = process.cpuUsage(cpu);
    if (app.task.name === NOOP_TASK) {
      dispatcherCpu.process.push(round((spent.user + spent.system) / settled));
      dispatcherCpu.lambda.push(round(standIn.lambdaCpuUs() / settled));
    }
    const { maxInFlight, maxBatch } = standIn.meter;
    return { rate: settled / seconds, settled, maxInFlight, maxBatch };
  } finally {
    await runtime.broker().close();
    // Unacknowledged messages (past the cap) go back to the queue, which cleanQueue deletes.
    await connection.close();
    await cleanQueue('amqp', queue);
  }
}

/** A figure of values computed elsewhere (their median). */
function figureOf(figure: Omit<Figure, 'value' | 'samples'>, samples: number[]): Figure {
  const result = { ...figure, value: median(samples), samples };
  log(`${result.id}: ${result.value} ${result.unit} (${samples.join(', ')})`);
  return result;
}

type Add = (figure: Figure | Promise<Figure>) => Promise<void>;

/** The Redis poller with the stand-in, per task, and the ideal the 1 s target is taken against. */
async function measureRedis(add: Add): Promise<void> {
  for (const item of TASK_CASES) {
    await add(
      measurePath(
        {
          id: `lambda-path.redis.${item.name}`,
          broker: 'redis',
          label: `poller → stand-in Lambda, ${item.label}`,
          n: scaled(item.redisN),
        },
        (run, n) => {
          const app = appOf(`bench.lambda-path.redis-${item.name}.${run}`, item.ms);
          return drainWithPoller(app, lambdaStandIn(app.registry), n);
        },
      ),
    );
  }
  const ideal = (MAX_IN_FLIGHT * INVOKE_BATCH_SIZE) / ((1000 + INVOKE_OVERHEAD_MS) / 1000);
  await add(
    figureOf(
      {
        id: 'lambda-path.redis.ideal-1s',
        system: 'ours',
        broker: 'redis',
        label: `ideal, 1 s tasks: ${MAX_IN_FLIGHT} in flight × ${INVOKE_BATCH_SIZE} / (1 s + ${INVOKE_OVERHEAD_MS} ms)`,
        settings: 'only',
        unit: 'tasks/s',
        note: 'computed, not measured: the reference of the 1 s target',
      },
      [round(ideal)],
    ),
  );
}

/** The Amazon MQ dispatcher with the stand-in, per task, and its CPU per no-op message. */
async function measureAmazonMq(add: Add): Promise<void> {
  await createVhost();
  for (const item of TASK_CASES) {
    await add(
      measurePath(
        {
          id: `lambda-path.amqp.${item.name}`,
          broker: 'amqp',
          label: `Amazon MQ dispatcher → stand-in Lambda, ${item.label}`,
          n: Math.max(EVENT_SIZE, scaled(item.amqpN)),
          extra: `; events of ${EVENT_SIZE}, one at a time`,
        },
        (run, n) => dispatchEvents(appOf(`bench.lambda-path.amqp-${item.name}.${run}`, item.ms), n),
      ),
    );
  }
  if (dispatcherCpu.process.length === 0) return;
  const base = {
    system: 'ours',
    broker: 'amqp',
    settings: 'default',
    unit: 'µs',
    n: Math.max(EVENT_SIZE, scaled(TASK_CASES[0].amqpN)),
  } as const;
  await add(
    figureOf(
      {
        ...base,
        id: 'lambda-path.amqp.cpu-process',
        label: 'CPU per message, whole process, no-op tasks',
        note: 'dispatcher + in-process task handlers + stand-in',
      },
      dispatcherCpu.process,
    ),
  );
  await add(
    figureOf(
      {
        ...base,
        id: 'lambda-path.amqp.cpu-dispatcher',
        label: 'CPU per message, dispatcher alone, no-op tasks',
        note: "whole process minus Lambda's side (request parse, task handler, answer)",
      },
      dispatcherCpu.process.map((all, index) => round(all - (dispatcherCpu.lambda[index] ?? 0))),
    ),
  );
}

/** The Redis poller invoking a no-op task function through serverless-offline. */
async function measureOffline(add: Add): Promise<void> {
  await add(
    withOffline(MAX_IN_FLIGHT, (client) =>
      measurePath(
        {
          id: 'lambda-path.offline.noop',
          broker: 'redis',
          label: "poller → serverless-offline's Lambda endpoint, no-op tasks",
          n: scaled(5_000),
          standIn: false,
        },
        (run, n) =>
          drainWithPoller(appOf(`bench.lambda-path.offline.${run}`, 0), meteredInvoker(client), n),
      ),
    ),
  );
}

/** Quick tasks behind a long one in the local worker. */
async function measureHeadOfLine(add: Add): Promise<void> {
  await add(
    measure(
      {
        id: 'lambda-path.local.head-of-line',
        system: 'ours',
        broker: 'redis',
        label: `head of line: ${QUICK_TASKS} quick tasks ${QUICK_AFTER_MS} ms after a ${LONG_TASK_MS / 1000} s one, local worker c${HEAD_OF_LINE_CONCURRENCY}`,
        settings: 'default',
        unit: 'ms',
        note: 'worst of the quick tasks: end − publish − own run time',
      },
      headOfLine,
    ),
  );
}

const SECTIONS = {
  redis: measureRedis,
  amqp: measureAmazonMq,
  offline: measureOffline,
  local: measureHeadOfLine,
} as const;

/** `lambda-path.ts [redis|amqp|offline|local]`: one section only. */
const only = process.argv[2];
await runScript('lambda-path', async (add) => {
  for (const [name, section] of Object.entries(SECTIONS)) {
    if (!only || only === name) await section(add);
  }
});
