/**
 * A consumer process for the crash test: runs the fixture app's `sentry.tasks.do_work` from one
 * Redis queue with the local worker, and `RPUSH`es one JSON {@link RunRecord} per run to a list,
 * so the test can count runs across processes it kills.
 *
 * Run with `node --import tsx test/fixtures-app/crash-consumer.ts` (one process, so a SIGKILL
 * of its pid leaves nothing behind). Configured by environment:
 *
 *   SC_REDIS_URL           broker URL, redis://127.0.0.1:6379/10 or redis+cluster://… (required)
 *   SC_QUEUE               queue to consume (required)
 *   SC_RECORD_KEY          list the run records are pushed to (required)
 *   SC_VISIBILITY_TIMEOUT  seconds before a dead consumer's holds are restored (default 3600)
 *   SC_CONCURRENCY         tasks running at once (default 10)
 *   SC_SLEEP_MS            milliseconds each run takes (default 20)
 *   SC_RESTORE_EVERY_MS    how often restoreStale runs (default 250)
 *   SC_WAIT_MS             longest wait per receive (default 250)
 *
 * Prints `ready <pid>` once consuming; SIGTERM stops it after the batch in hand is settled.
 */
import { createBroker } from '../../src/brokers/create-broker.js';
import { createRedisClient, loadRedisClient } from '../../src/brokers/redis/redis-client.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { createFixtureApp } from './registry.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function numberFrom(name: string, fallback: number): number {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : Number(value);
}

const url = required('SC_REDIS_URL');
const queue = required('SC_QUEUE');
const recordKey = required('SC_RECORD_KEY');

// The package's own client factory: a cluster URL gets a cluster client, as the broker does.
await loadRedisClient();
const recorder = createRedisClient(url);
const { registry } = createFixtureApp({
  queue,
  sleepMs: numberFrom('SC_SLEEP_MS', 20),
  record: async (run) => {
    await recorder.rpush(recordKey, JSON.stringify(run));
  },
});
const broker = createBroker(
  { kind: 'redis', url, visibilityTimeout: numberFrom('SC_VISIBILITY_TIMEOUT', 3600) },
  { queues: registry.queues },
);

const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());

process.stdout.write(`ready ${process.pid}\n`);
try {
  await runLocalWorker(broker, registry, {
    queues: [queue],
    concurrency: numberFrom('SC_CONCURRENCY', 10),
    waitMs: numberFrom('SC_WAIT_MS', 250),
    restoreEveryMs: numberFrom('SC_RESTORE_EVERY_MS', 250),
    signal: controller.signal,
  });
} finally {
  await broker.close();
  await recorder.quit();
}
