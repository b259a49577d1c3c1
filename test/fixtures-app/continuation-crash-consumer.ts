/**
 * A consumer process for the continuation crash test: runs `crash.step` from one queue with the
 * local worker, on Redis or RabbitMQ, and can kill itself (SIGKILL) at the first settle that
 * follows a publish, i.e. after a workflow's continuations are on the broker and before the
 * message that produced them is settled: the window the at-least-once promise is about.
 *
 * Run with `node --import tsx test/fixtures-app/continuation-crash-consumer.ts`. Configured by
 * environment:
 *
 *   SC_BROKER_URL          redis://… or amqp://… (required)
 *   SC_QUEUE               queue to consume (required)
 *   SC_RECORD_FILE         file to append one JSON line per run and per publish (required)
 *   SC_KILL_AFTER_PUBLISH  "1": SIGKILL this process at the first settle after a publish
 *   SC_VISIBILITY_TIMEOUT  Redis only: seconds before a dead consumer's holds are restored
 *
 * Prints `ready <pid>` once consuming; SIGTERM stops it after what it holds is settled.
 */
import { appendFileSync } from 'node:fs';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const url = required('SC_BROKER_URL');
const queue = required('SC_QUEUE');
const recordFile = required('SC_RECORD_FILE');
const killAfterPublish = process.env.SC_KILL_AFTER_PUBLISH === '1';
const record = (entry: Record<string, unknown>) =>
  appendFileSync(recordFile, `${JSON.stringify({ pid: process.pid, ...entry })}\n`);

const step = defineTask({ name: 'crash.step', queue }, (_kwargs, ctx) => {
  record({ event: 'run', id: ctx.id });
  return `result of ${ctx.id}`;
});
const registry = createRegistry({ tasks: [step], queues: [{ name: queue }] });
const inner = url.startsWith('redis')
  ? createBroker(
      { kind: 'redis', url, visibilityTimeout: Number(process.env.SC_VISIBILITY_TIMEOUT ?? 3600) },
      { queues: registry.queues },
    )
  : createBroker({ kind: 'rabbitmq', url }, { queues: registry.queues });

let published = false;
// Every other operation goes to the real broker, bound to it (its fields are private).
const broker = new Proxy(inner, {
  get(target, property) {
    if (property === 'publish') {
      return async (messages: Parameters<Broker['publish']>[0]) => {
        await target.publish(messages);
        published = true;
        record({ event: 'published', ids: messages.map((message) => message.id) });
      };
    }
    if (property === 'settle') {
      return async (items: Parameters<Broker['settle']>[0]) => {
        if (killAfterPublish && published) {
          record({ event: 'killed' });
          process.kill(process.pid, 'SIGKILL');
          await new Promise(() => undefined);
        }
        await target.settle(items);
      };
    }
    const value = Reflect.get(target, property);
    return typeof value === 'function' ? value.bind(target) : value;
  },
});

const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());

process.stdout.write(`ready ${process.pid}\n`);
try {
  await runLocalWorker(broker, registry, {
    queues: [queue],
    concurrency: 1,
    waitMs: 250,
    restoreEveryMs: 250,
    signal: controller.signal,
  });
} finally {
  await broker.close();
}
