/**
 * Our side of every benchmark, run as a child process:
 *
 *   ours.ts publish <broker> <queue> <n> <mode>               time n publishes; mode: single
 *                                                            (awaited one at a time), batch
 *                                                            (1000 a call), pipelined (batches,
 *                                                            4 calls in flight), eta<seconds>
 *                                                            (batches due that much later)
 *   ours.ts worker  <broker> <queue> <n> <concurrency> [events]
 *                                                            the long-lived local worker:
 *                                                            drain n, or time publish → start
 *                                                            (n = 0: run until stopped);
 *                                                            `events`: with Celery events on
 *   ours.ts send    <broker> <queue> <n> <intervalMs>        publish n, one every intervalMs
 *
 * `<broker>` is `redis`, `amqp` or `redis-cluster` (harness.ts' BROKERS). Reports `ready`, then
 * `result` (publishers, senders) or `first` / `done` (workers).
 */
import { createBroker } from '../../src/brokers/create-broker.js';
import { createEventDispatcher } from '../../src/brokers/create-event-dispatcher.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { BROKERS, type BrokerName, NOOP_TASK, nowMs, paced, report } from '../harness.js';

const [command, brokerName, queue = 'bench.ours', nText = '1000', extra = '', flag = ''] =
  process.argv.slice(2);
const n = Number(nText);
const url = BROKERS[brokerName as BrokerName];
if (!url) throw new Error(`unknown broker ${brokerName}`);

/** Messages per publish call in batch modes. */
const BATCH = 1000;
/** Publish calls in flight at once in `pipelined` mode. */
const PIPELINE_DEPTH = 4;

let first = 0;
let count = 0;
const latencies: number[] = [];
let finish: () => void = () => undefined;

/** The no-op task. Latency runs stamp `sent` (ms) in its kwargs; the handler measures to it. */
const noop = defineTask({ name: NOOP_TASK, queue, maxRetries: 0 }, (kwargs) => {
  const started = nowMs();
  if (first === 0) first = started;
  if (typeof kwargs.sent === 'number') latencies.push(started - kwargs.sent);
});
const registry = createRegistry({ tasks: [noop], queues: [{ name: queue }] });
const broker = createBroker(url, { queues: registry.queues });

async function publish(mode: string): Promise<void> {
  // Connects and declares the queue before the clock starts (the runner removes this message).
  await broker.publish([noop.createMessage()]);
  report({ event: 'ready' });
  const started = nowMs();
  if (mode === 'single') {
    for (let index = 0; index < n; index++) await broker.publish([noop.createMessage()]);
  } else {
    // `batch`: one call per 1000 messages, awaited; `pipelined`: the same calls, up to
    // PIPELINE_DEPTH of them in flight at once.
    const depth = mode === 'pipelined' ? PIPELINE_DEPTH : 1;
    const countdown = mode.startsWith('eta') ? Number(mode.slice(3)) : undefined;
    const inFlight = new Set<Promise<void>>();
    for (let index = 0; index < n; index += BATCH) {
      const batch = [];
      for (let item = index; item < Math.min(n, index + BATCH); item++) {
        batch.push(noop.createMessage(countdown === undefined ? {} : { countdown }));
      }
      const published = broker.publish(batch).finally(() => inFlight.delete(published));
      inFlight.add(published);
      if (inFlight.size >= depth) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }
  const seconds = (nowMs() - started) / 1000;
  report({ event: 'result', rate: n / seconds, seconds });
}

async function send(intervalMs: number): Promise<void> {
  await broker.stats(queue);
  report({ event: 'ready' });
  await paced(n, intervalMs, () =>
    broker.publish([noop.createMessage({ kwargs: { sent: nowMs() } })]),
  );
  report({ event: 'result', sent: n });
}

async function work(concurrency: number): Promise<void> {
  const controller = new AbortController();
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  // Connects (and on RabbitMQ declares the queue) before reporting ready.
  await broker.stats(queue);
  // As `serverless-celery worker --events` opens it.
  const events = flag === 'events' ? createEventDispatcher(url, { confirm: false }) : null;
  const worker = runLocalWorker(broker, registry, {
    queues: [queue],
    concurrency,
    events,
    signal: controller.signal,
    onOutcome: ({ outcome }) => {
      // Messages not due yet are parked (the delays benchmark); anything else is a bench bug.
      if (outcome.kind === 'not-due') return;
      if (outcome.kind !== 'succeeded') throw new Error(`unexpected outcome ${outcome.kind}`);
      if (++count === n) finish();
    },
  });
  report({ event: 'ready' });
  await done;
  const last = nowMs();
  report({
    event: 'done',
    count,
    first,
    last,
    rate: (count - 1) / ((last - first) / 1000),
    latencies: latencies.length > 0 ? latencies : undefined,
  });
  controller.abort();
  await worker;
  await events?.close();
}

try {
  if (command === 'publish') await publish(extra || 'single');
  else if (command === 'send') await send(Number(extra || 5));
  else if (command === 'worker') await work(Number(extra || 10));
  else throw new Error(`unknown command ${command}`);
} finally {
  await broker.close();
}
