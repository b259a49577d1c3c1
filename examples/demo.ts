/**
 * `npm run demo`: the foundation at work, offline. Declares Sentry's kind of task, publishes a
 * call as a real Celery protocol v2 message (the Redis envelope and the AMQP headers a Python
 * worker reads), then shows the retry decision taking a flaky error through Celery's sequence.
 */
import { z } from 'zod';
import {
  createRegistry,
  decideRetry,
  decodeRedisMessage,
  defineTask,
  encodeAmqpMessage,
  encodeRedisMessage,
  InvalidArgumentsError,
} from '../src/index.js';

class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}
class EventGoneError extends Error {
  override name = 'EventGoneError';
}

const saveEvent = defineTask(
  {
    name: 'ingest.save_event',
    queue: 'events',
    kwargs: z.object({ event_id: z.string() }),
    retry: { on: [StoreUnavailableError], exclude: [TypeError], ignore: [EventGoneError] },
    backoff: { factor: 2, jitter: false },
  },
  async ({ event_id }) => ({ saved: event_id }),
);

const registry = createRegistry({ tasks: [{ saveEvent }], queues: [{ name: 'events' }] });
console.log(`registered: ${registry.tasks.map((task) => task.name).join(', ')}`);

const message = saveEvent.createMessage({ kwargs: { event_id: 'evt-42' }, countdown: 5 });
const redis = encodeRedisMessage(message);
console.log(`\nLPUSH ${JSON.stringify(redis.key)} <envelope>, the envelope a Celery worker reads:`);
console.log(JSON.stringify(JSON.parse(redis.envelope), null, 2));

const amqp = encodeAmqpMessage(message);
console.log('\nAMQP headers (integers typed as signed 32-bit for py-amqp):');
console.log(JSON.stringify(amqp.options.headers));

const decoded = decodeRedisMessage(redis.envelope);
console.log(`\ndecoded back: ok=${decoded.ok} id=${decoded.ok ? decoded.message.id : '-'}`);

console.log('\nA flaky store, as Celery would retry it (maxRetries 3, backoff 2 s doubling):');
for (let retries = 0; retries <= 3; retries++) {
  const decision = decideRetry({
    thrown: new StoreUnavailableError('store timed out'),
    retries,
    policy: saveEvent.retryPolicy,
    task: saveEvent.name,
  });
  const outcome =
    decision.kind === 'retry'
      ? `retry in ${decision.delayMs / 1000} s`
      : `${decision.kind}: ${decision.kind === 'fail' ? decision.reason : ''}`;
  console.log(`  attempt with retries=${retries}: ${outcome}`);
}
for (const thrown of [new TypeError('bug'), new EventGoneError('deleted')]) {
  const decision = decideRetry({
    thrown,
    retries: 0,
    policy: saveEvent.retryPolicy,
    task: saveEvent.name,
  });
  console.log(
    `  ${thrown.name}: ${decision.kind}${decision.kind === 'fail' ? ` (${decision.reason})` : ''}`,
  );
}

try {
  saveEvent.createMessage({ kwargs: { event_id: 42 } as never });
} catch (error) {
  if (!(error instanceof InvalidArgumentsError)) throw error;
  console.log(`\nbad input is refused before it reaches the broker:\n  ${error.message}`);
}
