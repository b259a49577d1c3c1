/**
 * Celery events on a throw-away Redis Cluster of three masters: our worker's and producer's
 * events, sent through a `redis+cluster://` URL, are `PUBLISH`ed on whichever master ioredis
 * picks, and Redis Cluster hands each to the subscribers of every node. Proven with a pattern
 * subscriber on each master, and with a real Celery `Receiver` feeding `State` (5.2.6, and 5.6.3
 * with `CELERY56_PY`): kombu's plain client on the master of `{celery}`, `global_keyprefix`
 * `{celery}:` (on another master its queue binding would get MOVED).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker } from '../../src/brokers/create-broker.js';
import { createEventDispatcher } from '../../src/brokers/create-event-dispatcher.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { createPublisher } from '../../src/producer/publisher.js';
import { PYTHON } from '../helpers/celery.js';
import { captureCeleryEvents, stopCaptures } from '../helpers/celery-events.js';
import { openNodeClient, type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.js';
import { keySlot, slotOwner } from '../helpers/redis-cluster-slots.js';
import { startLocalWorker } from '../helpers/worker.js';

/** The key prefix a cluster URL gets by default; kombu's `global_keyprefix` must equal it. */
const PREFIX = '{celery}:';
const CELERY_VERSIONS = [
  { version: '5.2.6', python: PYTHON },
  ...(process.env.CELERY56_PY ? [{ version: '5.6.3', python: process.env.CELERY56_PY }] : []),
];

let cluster: RedisCluster;
const closing: { close(): Promise<unknown> }[] = [];
const nodeClients: Redis[] = [];

function track<T extends { close(): Promise<unknown> }>(each: T): T {
  closing.push(each);
  return each;
}

/** A plain client of one master, disconnected in afterAll. */
function nodeClient(port: number): Redis {
  const node = cluster.nodes.find((each) => each.port === port);
  if (!node) throw new Error(`no master on ${port}`);
  const client = openNodeClient(cluster, node);
  nodeClients.push(client);
  return client;
}

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
});

afterAll(async () => {
  await stopCaptures();
  for (const each of closing.splice(0).reverse()) await each.close();
  for (const client of nodeClients) client.disconnect();
  await cluster?.stop();
});

describe('Celery events on a cluster', () => {
  const channel = `${PREFIX}/0.celeryev/*`;

  /** A pattern subscriber on each master, keeping the event types and ids it hears. */
  async function listenOnEveryNode() {
    return Promise.all(
      cluster.ports.map(async (port) => {
        const client = nodeClient(port);
        const heard: { type: string; uuid?: string; hostname: string }[] = [];
        const received = { messages: 0 };
        client.on('pmessage', (_pattern: string, _channel: string, text: string) => {
          received.messages++;
          // Task events come in groups (Celery's `task.multi`): a list body.
          heard.push(...[JSON.parse(JSON.parse(text).body)].flat());
        });
        await client.psubscribe(channel);
        return { port, heard, received };
      }),
    );
  }

  /** `PUBLISH` calls each master has served so far. */
  async function publishCalls(): Promise<Map<number, number>> {
    const calls = await Promise.all(
      cluster.ports.map(async (port) => {
        const stats = String(await nodeClient(port).info('commandstats'));
        return [port, Number(/cmdstat_publish:calls=(\d+)/.exec(stats)?.[1] ?? 0)] as const;
      }),
    );
    return new Map(calls);
  }

  it('reaches subscribers on every master, whichever node each PUBLISH went through', async () => {
    // Prepare
    const listeners = await listenOnEveryNode();
    const queue = `events-${randomUUID()}`;
    const add = defineTask({ name: 'csx.ev_add', queue }, (_kwargs, { args }) =>
      (args as number[]).reduce((total, n) => total + n, 0),
    );
    const registry = createRegistry({ tasks: [add], queues: [{ name: queue }] });
    const broker = track(createBroker(cluster.url, { queues: registry.queues }));
    const workerName = `celery@cluster-${randomUUID().slice(0, 8)}`;
    const events = track(createEventDispatcher(cluster.url, { hostname: workerName }));
    const before = await publishCalls();
    let settled = 0;
    const stop = startLocalWorker(broker, registry, {
      queues: [queue],
      events,
      onOutcome: () => {
        settled++;
      },
    });

    // Act
    const ids = await Promise.all(
      [1, 2, 3].map((n) => createPublisher(broker).applyAsync(add, { args: [n, n] })),
    );
    while (settled < ids.length) await sleep(20);
    await stop();
    await until(
      () => listeners.every(({ heard }) => heard.some((event) => event.type === 'worker-offline')),
      'every listener to hear worker-offline',
    );
    const after = await publishCalls();

    // Assess: every listener heard the worker's life and each task's, in full.
    for (const { heard } of listeners) {
      const types = heard
        .filter((event) => event.hostname === workerName)
        .map((event) => event.type);
      expect(types[0]).toBe('worker-online');
      expect(types.at(-1)).toBe('worker-offline');
      for (const id of ids) {
        expect(heard.filter((event) => event.uuid === id).map((event) => event.type)).toEqual([
          'task-received',
          'task-started',
          'task-succeeded',
        ]);
      }
    }
    // Each PUBLISH ran on one master only, yet every master's subscriber got every message: the
    // two others heard it over the cluster bus.
    const messages = listeners.map(({ received }) => received.messages);
    const served = cluster.ports.map((port) => (after.get(port) ?? 0) - (before.get(port) ?? 0));
    expect(messages[0]).toBeGreaterThan(0);
    expect(messages).toEqual([messages[0], messages[0], messages[0]]);
    expect(served.reduce((total, n) => total + n, 0)).toBe(messages[0]);
  });

  it.each(CELERY_VERSIONS)(
    'is followed by a real Celery $version State on the master of {celery}',
    async ({ python }) => {
      // Prepare: kombu's client is a single node's, so it talks to the master of the prefix's
      // slot (its queue binding is a `{celery}:` key); our client PUBLISHes through any master.
      const owner = await slotOwner(cluster, await keySlot(cluster, PREFIX));
      const node = nodeClient(owner.port);
      const subscribed = await patternSubscribers(node);
      const capture = captureCeleryEvents({
        broker: `redis://${owner.host}:${owner.port}/0`,
        seconds: 6,
        transportOptions: { global_keyprefix: PREFIX },
        python,
      });
      await capture.ready;
      await until(
        async () => (await patternSubscribers(node)) > subscribed,
        'the receiver to PSUBSCRIBE',
      );
      const queue = `events-py-${randomUUID()}`;
      const add = defineTask({ name: 'csx.py_add', queue }, (_kwargs, { args }) =>
        (args as number[]).reduce((total, n) => total + n, 0),
      );
      const registry = createRegistry({ tasks: [add], queues: [{ name: queue }] });
      const broker = track(createBroker(cluster.url, { queues: registry.queues }));
      const workerName = `celery@cluster-py-${randomUUID().slice(0, 8)}`;
      const producerName = `ts${process.pid}@cluster-${randomUUID().slice(0, 8)}`;
      const events = track(createEventDispatcher(cluster.url, { hostname: workerName }));
      const publisher = createPublisher(broker, {
        events: track(createEventDispatcher(cluster.url, { hostname: producerName })),
      });
      const before = await publishCalls();
      let settled = 0;
      const stop = startLocalWorker(broker, registry, {
        queues: [queue],
        events,
        onOutcome: () => {
          settled++;
        },
      });

      // Act: a task-sent PUBLISH per call, each through a master ioredis picks at random.
      const ids: string[] = [];
      for (let n = 0; n < 12; n++) ids.push(await publisher.applyAsync(add, { args: [n, n] }));
      while (settled < ids.length) await sleep(20);
      await stop();
      const after = await publishCalls();
      const state = await capture.result;

      // Assess: with 15+ PUBLISHes spread at random, others than the receiver's master served some
      // (all on its own: a chance of 3^-15).
      ids.forEach((id, n) => {
        expect(state.tasks[id]).toMatchObject({
          name: 'csx.py_add',
          state: 'SUCCESS',
          args: `[${n}, ${n}]`,
          result: String(2 * n),
          worker: workerName,
          client: producerName,
          routing_key: queue,
        });
      });
      expect(state.workers[workerName]).toMatchObject({ alive: false, processed: ids.length });
      const elsewhere = cluster.ports
        .filter((port) => port !== owner.port)
        .map((port) => (after.get(port) ?? 0) - (before.get(port) ?? 0));
      expect(elsewhere.reduce((total, n) => total + n, 0)).toBeGreaterThan(0);
    },
  );
});

/** Resolves once `condition` holds; fails after 10 s naming `what` it waited for. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

/** Connections of `node` with a pattern subscription (kombu's receiver, our listeners). */
async function patternSubscribers(node: Redis): Promise<number> {
  const clients = String(await node.call('CLIENT', 'LIST')).split('\n');
  return clients.filter((line) => /\bpsub=[1-9]/.test(line)).length;
}
