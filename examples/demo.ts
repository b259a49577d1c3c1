/**
 * `npm run demo`: declare a task, publish it as a real Celery message to the local broker, and
 * watch a worker run it, retry it with backoff and dead-letter what must not be retried.
 *
 * Broker: `BROKER_URL`, else the local Redis (`redis://127.0.0.1:6379/0`); an `amqp://` URL runs
 * the same demo on RabbitMQ. It uses the queue `demo.events` and leaves its dead letter there.
 */
import * as z from 'zod';
// Internal (not in the package's exports): only to show the wire format.
import { encodeRedisMessage } from '../src/core/redis-codec.js';
import {
  BrokerError,
  createBroker,
  createRegistry,
  DEFAULT_BROKER_URL,
  defineTask,
  InvalidArgumentsError,
  redactUrl,
  runLocalWorker,
  type WorkerEvent,
} from '../src/index.js';

class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

const QUEUE = 'demo.events';
const attempts = new Map<string, number>();

/** Fails twice with a transient error for `flaky` events, and for good with a bug for `broken`. */
const saveEvent = defineTask(
  {
    name: 'ingest.save_event',
    queue: QUEUE,
    kwargs: z.object({ event_id: z.string() }),
    retry: { on: [StoreUnavailableError], exclude: [TypeError] },
    backoff: { factor: 1, jitter: false },
  },
  ({ event_id }, ctx) => {
    attempts.set(event_id, (attempts.get(event_id) ?? 0) + 1);
    if (event_id.startsWith('flaky') && ctx.retries < 2)
      throw new StoreUnavailableError('store timed out');
    if (event_id.startsWith('broken')) throw new TypeError('event has no payload');
    return { saved: event_id };
  },
);

const registry = createRegistry({ tasks: [saveEvent], queues: [{ name: QUEUE }] });
const url = process.env.BROKER_URL ?? DEFAULT_BROKER_URL;
const broker = createBroker(url, { queues: registry.queues });

const sample = saveEvent.createMessage({ kwargs: { event_id: 'evt-1' } });
console.log(`A Celery protocol v2 message, as a Python worker reads it from Redis:\n`);
console.log(JSON.stringify(JSON.parse(encodeRedisMessage(sample).envelope), null, 2));

try {
  saveEvent.createMessage({ kwargs: { event_id: 42 } as never });
} catch (error) {
  if (!(error instanceof InvalidArgumentsError)) throw error;
  console.log(`\nBad input never reaches the broker:\n  ${error.message}`);
}

const ids = ['evt-1', 'flaky-2', 'broken-3'];
try {
  await broker.publish(ids.map((event_id) => saveEvent.createMessage({ kwargs: { event_id } })));
} catch (error) {
  if (!(error instanceof BrokerError)) throw error;
  console.error(`\n${error.message}`);
  console.error(
    url.startsWith('amqp')
      ? 'Start one with: rabbitmq-server -detached'
      : 'Start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
  );
  await broker.close();
  process.exit(1);
}
console.log(
  `\nPublished ${ids.length} tasks to ${redactUrl(url)} (queue ${QUEUE}). A worker runs them:\n`,
);

const stop = new AbortController();
const settled = new Set<string>();
const started = Date.now();
const report = ({ outcome, delivery }: WorkerEvent) => {
  if (!delivery.result.ok) return;
  const { id, kwargs, retries } = delivery.result.message;
  const at = `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const detail =
    outcome.kind === 'retry'
      ? `retry in ${((Date.parse(outcome.dueAt) - Date.now()) / 1000).toFixed(1)}s (${outcome.errorType})`
      : outcome.kind === 'dead'
        ? `dead-lettered: ${outcome.reason.reason} (${outcome.reason.detail})`
        : outcome.kind;
  console.log(
    `  ${at.padStart(5)}  ${String(kwargs.event_id).padEnd(9)} retries=${retries}  ${detail}`,
  );
  if (outcome.kind === 'succeeded' || outcome.kind === 'dead') settled.add(id);
  if (settled.size === ids.length) stop.abort();
};
const timeout = setTimeout(() => stop.abort(), 20_000);
await runLocalWorker(broker, registry, {
  queues: [QUEUE],
  waitMs: 200,
  signal: stop.signal,
  onOutcome: report,
});
clearTimeout(timeout);

const [dead] = await broker.deadLetters(QUEUE, 1);
console.log(`\nDead letter kept with its reason: ${dead?.reason} — ${dead?.detail}`);
console.log(`Queue now: ${JSON.stringify(await broker.stats(QUEUE))}`);
await broker.close();
