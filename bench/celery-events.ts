/**
 * Cost of publishing Celery events: N `task-succeeded` events on each broker, one send per event
 * (one round trip each) against sends of 100 (pipelined / one confirm per batch), and against
 * Celery's `task.multi` lists; and a busy worker's flushes (three events per task, a thousand
 * per send), with the CPU each event costs the sender. One receiver listens, as Flower would: a
 * pattern subscription on Redis, a bound queue on RabbitMQ (an event nobody listens to costs
 * Redis and RabbitMQ less).
 *
 *   node --import tsx bench/celery-events.ts [N]     (default 10000; RUNS=3 medians)
 *
 * Isolation: a throw-away `redis-server` on a free port and a throw-away vhost, both removed.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { RabbitMqEventDispatcher } from '../src/brokers/rabbitmq/rabbitmq-events.js';
import { RedisEventDispatcher } from '../src/brokers/redis/redis-events.js';
import { parseBrokerConfig } from '../src/config/broker-config.js';
import {
  type EventDraft,
  taskReceived,
  taskStarted,
  taskSucceeded,
} from '../src/core/celery-events.js';
import type { EventDispatcher } from '../src/core/event-dispatcher.js';
import { createTaskMessage } from '../src/core/message.js';
import { listenToEvents, median } from './harness.js';

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 10_000);
const RUNS = Number(process.env.RUNS ?? 3);
const BATCH = 100;

interface Case {
  readonly label: string;
  readonly send: (events: EventDispatcher, drafts: readonly EventDraft[]) => Promise<void>;
  /** The events sent. @defaultValue N `task-succeeded` */
  readonly drafts?: () => EventDraft[];
}

/** Events per send of a busy worker: it flushes its buffer at 1000 events (event-sender.ts). */
const FLUSH = 999;

const CASES: Case[] = [
  {
    label: 'one send per event',
    send: async (events, drafts) => {
      for (const draft of drafts) await events.send([draft]);
    },
  },
  {
    label: `sends of ${BATCH} (pipelined / one confirm)`,
    send: async (events, drafts) => {
      for (let at = 0; at < drafts.length; at += BATCH) {
        await events.send(drafts.slice(at, at + BATCH));
      }
    },
  },
  {
    label: `sends of ${BATCH} as task.multi`,
    send: async (events, drafts) => {
      for (let at = 0; at < drafts.length; at += BATCH) {
        await events.send(drafts.slice(at, at + BATCH), { multi: true });
      }
    },
  },
  {
    label: `a worker's flush: received, started, succeeded per task, sends of ${FLUSH} as task.multi`,
    send: async (events, drafts) => {
      for (let at = 0; at < drafts.length; at += FLUSH) {
        await events.send(drafts.slice(at, at + FLUSH), { multi: true });
      }
    },
    drafts: () =>
      Array.from({ length: Math.ceil(N / 3) }, () => {
        const message = createTaskMessage({ task: 'bench.noop', queue: 'bench', args: [42] });
        return [
          taskReceived(message),
          taskStarted(message.id),
          taskSucceeded(message.id, null, 0.0001),
        ];
      }).flat(),
  },
];

function succeeded(): EventDraft[] {
  return Array.from({ length: N }, () => taskSucceeded(randomUUID(), { ok: true }, 0.01));
}

/** Events per second and this process's CPU (user + system) per event, medians of RUNS. */
async function time(events: EventDispatcher, testCase: Case): Promise<[number, number]> {
  const rates: number[] = [];
  const cpus: number[] = [];
  for (let attempt = 0; attempt < RUNS; attempt += 1) {
    const batch = (testCase.drafts ?? succeeded)();
    const cpu = process.cpuUsage();
    const started = performance.now();
    await testCase.send(events, batch);
    const used = process.cpuUsage(cpu);
    rates.push(batch.length / ((performance.now() - started) / 1000));
    cpus.push((used.user + used.system) / batch.length);
  }
  return [median(rates), median(cpus)];
}

/** A table row: events/s and µs of CPU per event. */
function row(broker: string, label: string, [rate, cpu]: [number, number]): string {
  return `| ${broker} | ${label} | ${Math.round(rate)} | ${cpu.toFixed(2)} |`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function benchRedis(rows: string[]): Promise<void> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', `${port}`, '--save', '', '--appendonly', 'no']);
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept')) resolve();
    });
  });
  const url = `redis://127.0.0.1:${port}/0`;
  const listener = await listenToEvents(url);
  const config = parseBrokerConfig({ kind: 'redis', url });
  if (config.kind !== 'redis') throw new Error('unreachable');
  const events = new RedisEventDispatcher({ config, hostname: 'bench@redis' });
  try {
    for (const testCase of CASES) {
      rows.push(row('Redis', testCase.label, await time(events, testCase)));
    }
  } finally {
    await events.close();
    await listener.stop();
    child.kill('SIGTERM');
  }
  console.error(`redis: the listener heard ${listener.heard()} messages`);
}

async function benchRabbit(rows: string[]): Promise<void> {
  const vhost = `sc-bench-events-${randomUUID()}`;
  await run('rabbitmqctl', ['add_vhost', vhost, '-q']);
  await run('rabbitmqctl', ['set_permissions', '-q', '-p', vhost, 'guest', '.*', '.*', '.*']);
  const url = `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vhost)}`;
  try {
    const listener = await listenToEvents(url);
    for (const confirm of [true, false]) {
      const config = parseBrokerConfig({ kind: 'rabbitmq', url });
      if (config.kind !== 'rabbitmq') throw new Error('unreachable');
      const events = new RabbitMqEventDispatcher({ config, confirm, hostname: 'bench@amqp' });
      for (const testCase of CASES) {
        const broker = `RabbitMQ (${confirm ? 'confirms' : 'no confirms'})`;
        rows.push(row(broker, testCase.label, await time(events, testCase)));
      }
      await events.close();
    }
    await listener.stop();
  } finally {
    await run('rabbitmqctl', ['delete_vhost', '-q', vhost]);
  }
}

const rows = [
  `| broker | how | events/s (N=${N}, median of ${RUNS}) | CPU µs per event |`,
  '| --- | --- | ---: | ---: |',
];
await benchRedis(rows);
await benchRabbit(rows);
console.log(rows.join('\n'));
