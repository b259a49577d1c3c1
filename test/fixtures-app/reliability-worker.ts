/**
 * The long-lived worker of the reliability tests (`serverless-celery worker --invoke local` in
 * a process of its own, on either broker): runs the fixture app's `sentry.tasks.do_work` from one
 * queue and records every execution in a Redis list that is not the broker, so the test can count
 * executions across processes it kills and brokers it restarts.
 *
 * Run with `node --import tsx test/fixtures-app/reliability-worker.ts` (one process, so a SIGKILL
 * of its pid leaves nothing behind). Configured by environment:
 *
 *   SC_BROKER_URL          redis://… or amqp://… (required)
 *   SC_QUEUE               queue to consume (required)
 *   SC_RECORD_URL          Redis URL of the execution log (required)
 *   SC_RECORD_KEY          list each execution is pushed to (required)
 *   SC_VISIBILITY_TIMEOUT  Redis: seconds before a dead consumer's holds are restored (default 3600)
 *   SC_PREFETCH            RabbitMQ: unacked messages the channel may hold (default 100)
 *   SC_CONCURRENCY         tasks running at once (default 10)
 *   SC_RESTORE_EVERY_MS    Redis: how often restoreStale runs (default 250)
 *   SC_WAIT_MS             longest wait per receive (default 250)
 *
 * Each execution is one list entry (`formatExecution`), pushed once the task has done its work and
 * before its message is settled (late settlement: a kill between the two makes a duplicate). Prints `ready <pid>` once consuming; SIGTERM stops it after the batch in
 * hand is settled; broker trouble is printed on stderr as the worker's warnings.
 */
import { Redis } from 'ioredis';
import { createBroker } from '../../src/brokers/create-broker.js';
import type { BrokerConfigInput } from '../../src/config/broker-config.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { createFixtureApp } from './registry.js';
import { formatExecution } from './reliability-executions.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function numberFrom(name: string, fallback: number): number {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : Number(value);
}

const url = required('SC_BROKER_URL');
const queue = required('SC_QUEUE');
const recordKey = required('SC_RECORD_KEY');

const recorder = new Redis(required('SC_RECORD_URL'), { maxRetriesPerRequest: 1 });
const { registry } = createFixtureApp({
  queue,
  record: async (run) => {
    await recorder.rpush(recordKey, formatExecution(run.id, run.redelivered, run.pid));
  },
});
const config: BrokerConfigInput = url.startsWith('amqp')
  ? { kind: 'rabbitmq', url, prefetch: numberFrom('SC_PREFETCH', 100) }
  : { kind: 'redis', url, visibilityTimeout: numberFrom('SC_VISIBILITY_TIMEOUT', 3600) };
const logger = { warn: (message: string) => process.stderr.write(`${message}\n`) };
const broker = createBroker(config, { queues: registry.queues, logger });

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
    logger,
  });
} finally {
  await broker.close();
  await recorder.quit();
}
