/**
 * Our producer's canvas against a real Python Celery worker (5.2.6, and 5.6.3 with
 * `CELERY56_PY`), on Redis and on RabbitMQ
 * (`BROKERS`): we publish a chain, a task with `link` and `link_error`, a group, a chord and a
 * `sendTask` of names only Python implements (`test/python/workflow_app.py`), and the Python
 * worker's records show what it ran, continuations included (it runs those itself). Then
 * Celery's own code reads our signatures: `inspect_queue.py --validate` on unconsumed messages,
 * and `Signature.from_dict` + `freeze` on every embed entry.
 *
 * Redis database 9 with unique queue names (only their keys are removed, and the result keys of
 * the ids the test saw); RabbitMQ in a throw-away vhost per file. The chord's size is stored by
 * a stand-in for the result backend (one SET, as Celery's Redis backend writes it).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { type ChordSize, chain, chord, group } from '../../src/core/canvas.js';
import { signature } from '../../src/core/signature.js';
import { createPublisher, type Publisher } from '../../src/producer/publisher.js';
import { BROKERS } from '../helpers/brokers.js';
import {
  type CeleryRunRecord,
  type CeleryWorker,
  celeryPidboxBinding,
  PYTHON,
  startCeleryWorker,
  stopCeleryWorkers,
} from '../helpers/celery.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { deleteQueueKeys, redisUrl } from '../helpers/redis.js';

const REDIS_DB = 9;

/**
 * The Celery versions to prove against: Debian's 5.2.6 always; 5.6.3 too when `CELERY56_PY`
 * names the python of a venv made by `shared/celery-interop/celery56-venv.sh DIR`.
 */
const CELERIES = [
  { version: '5.2.6', python: PYTHON },
  ...(process.env.CELERY56_PY ? [{ version: '5.6.3', python: process.env.CELERY56_PY }] : []),
];
const CASES = CELERIES.flatMap((celery) =>
  BROKERS.map((kind) => [`Celery ${celery.version} on ${kind}`, { ...celery, kind }] as const),
);
const RESULTS_URL = redisUrl(REDIS_DB);
const INSPECT_QUEUE = path.resolve(
  import.meta.dirname,
  '../../../shared/celery-interop/inspect_queue.py',
);

/** Stores chord sizes the way Celery's Redis backend does (`set_chord_size`). */
function chordSizeWriter(redis: Redis, seen: string[]) {
  return {
    async setChordSize(sizes: readonly ChordSize[]) {
      for (const { groupId, size } of sizes) {
        const key = `celery-taskset-meta-${groupId}.s`;
        seen.push(key);
        await redis.set(key, String(size), 'EX', 600);
      }
    },
  };
}

describe.each(CASES)('our canvas run by real %s', (_, { python: py, kind, version }) => {
  let url: string;
  let vhost: TestVhost | undefined;
  let results: Redis;
  let pyQueue: string;
  let broker: Broker;
  let publisher: Publisher;
  let python: CeleryWorker;
  let resultKeys: string[];

  beforeAll(async () => {
    if (kind === 'rabbitmq') {
      vhost = await createTestVhost('canvas');
      url = vhost.url;
    } else {
      url = redisUrl(REDIS_DB);
    }
    results = new Redis(RESULTS_URL, { maxRetriesPerRequest: 1 });
  });

  afterAll(async () => {
    await vhost?.remove();
    await results.quit();
  });

  beforeEach(async () => {
    pyQueue = `sc-canvas-py-${randomUUID()}`;
    resultKeys = [];
    broker = createBroker({ kind, url }, { queues: [], logger: { warn: () => undefined } });
    publisher = createPublisher(broker, { resultBackend: chordSizeWriter(results, resultKeys) });
    python = await startCeleryWorker({
      broker: url,
      queue: pyQueue,
      include: ['workflow_app'],
      resultBackend: RESULTS_URL,
      python: py,
    });
  });

  afterEach(async () => {
    const ids = python.records().map((record) => record.id);
    const hostnames = await stopCeleryWorkers();
    await broker.close();
    const keys = [...resultKeys, ...ids.map((id) => `celery-task-meta-${id}`)];
    if (keys.length > 0) await results.del(...keys);
    if (kind === 'redis') {
      await deleteQueueKeys(results, new RedisKeys(), [pyQueue]);
      for (const hostname of hostnames) {
        const { key, member } = celeryPidboxBinding(hostname);
        await results.srem(key, member);
      }
    }
  });

  const wf = (task: string, args: unknown[] = [], immutable = false) =>
    signature(task, { args: args as number[], options: { queue: pyQueue }, immutable });
  const runsOf = async (count: number, task?: string): Promise<CeleryRunRecord[]> => {
    const pick = (records: CeleryRunRecord[]) =>
      records.filter((run) => task === undefined || run.task === task);
    await python.waitForRecords(() => pick(python.runs()).length >= count, {
      timeoutMs: 30_000,
      what: `${count} Python run(s) of ${task ?? 'any task'}`,
    });
    return pick(python.runs());
  };

  it('runs chain(wf.add(1, 2), wf.add(3)): add(1, 2), then add(3, 3)', async () => {
    // Act
    const id = await publisher.applyAsync(chain(wf('wf.add', [1, 2]), wf('wf.add', [3])));

    // Assess
    const [first, second] = await runsOf(2);
    expect(first).toMatchObject({ task: 'wf.add', args: [1, 2], parent_id: null });
    expect(second).toMatchObject({
      task: 'wf.add',
      args: [3, 3],
      id,
      parent_id: first?.id,
      root_id: first?.id,
    });
  });

  it('runs the link of wf.add with its result first, and the errback of wf.fail with its id', async () => {
    // Act
    const added = await publisher.sendTask('wf.add', {
      args: [1, 2],
      queue: pyQueue,
      link: wf('wf.add', [100]),
    });
    const failed = await publisher.sendTask('wf.fail', {
      args: ['boom'],
      queue: pyQueue,
      linkError: wf('wf.errback'),
    });

    // Assess
    const [errback] = await runsOf(1, 'wf.errback');
    const callback = (await runsOf(2, 'wf.add')).find((run) => run.parent_id === added);
    expect(callback).toMatchObject({ args: [3, 100], parent_id: added, root_id: added });
    expect(errback).toMatchObject({ args: [failed], parent_id: failed, root_id: failed });
  });

  it('runs every member of a group under its group id', async () => {
    // Act
    const groupId = await publisher.applyAsync(
      group(wf('wf.add', [1, 1]), wf('wf.add', [2, 2]), wf('wf.add', [3, 3])),
    );

    // Assess
    const runs = await runsOf(3);
    expect(runs.map((run) => run.args).sort()).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    for (const run of runs) expect(run.group).toBe(groupId);
  });

  it('runs a chord: Python counts the parts on the size we stored and calls the body', async () => {
    // Act
    const bodyId = await publisher.applyAsync(
      chord([wf('wf.add', [1, 1]), wf('wf.add', [2, 2])], wf('wf.tsum')),
    );

    // Assess
    const [body] = await runsOf(1, 'wf.tsum');
    expect(body).toMatchObject({ id: bodyId, args: [[2, 4]] });
  });

  it('sends a name only Python declares with sendTask', async () => {
    // Act
    const id = await publisher.sendTask('wf.add', { args: [5, 6], queue: pyQueue, priority: 0 });

    // Assess
    const [run] = await runsOf(1);
    expect(run).toMatchObject({ task: 'wf.add', id, args: [5, 6], root_id: id, parent_id: null });
    // The outcome record follows the run record once the task has returned.
    await python.waitForRecords(() => python.outcomes().some((o) => o.id === id), {
      what: `the outcome of ${id}`,
    });
    expect(python.outcomes().find((o) => o.id === id)).toMatchObject({ state: 'SUCCESS' });
    expect(python.log()).toContain(` v${version} `);
  });
});

describe.each(CASES)('the validator of %s on our canvas messages', (_, { python: py, kind }) => {
  let url: string;
  let vhost: TestVhost | undefined;
  let admin: Redis | undefined;
  let queue: string;
  let broker: Broker;

  beforeAll(async () => {
    if (kind === 'rabbitmq') {
      vhost = await createTestVhost('canvas-validate');
      url = vhost.url;
    } else {
      url = redisUrl(REDIS_DB);
      admin = new Redis(url, { maxRetriesPerRequest: 1 });
    }
  });

  afterAll(async () => {
    await vhost?.remove();
    await admin?.quit();
  });

  beforeEach(() => {
    queue = `sc-canvas-validate-${randomUUID()}`;
    // Undeclared queues are declared the way Celery declares them, on first publish.
    broker = createBroker({ kind, url }, { queues: [], logger: { warn: () => undefined } });
  });

  afterEach(async () => {
    await broker.close();
    if (admin) await deleteQueueKeys(admin, new RedisKeys(), [queue]);
  });

  it('passes inspect_queue.py --validate and loads every embed entry with Signature.from_dict', async () => {
    // Prepare
    const sig = (task: string, args: number[] = []) =>
      signature(task, { args, options: { queue } });
    const publisher = createPublisher(broker, {
      resultBackend: { setChordSize: async () => undefined },
    });
    await publisher.applyAsync(chain(sig('wf.add', [1, 2]), sig('wf.add', [3]), sig('wf.tsum')));
    await publisher.sendTask('wf.add', {
      args: [1, 2],
      queue,
      link: [sig('wf.add', [100]), signature('wf.errback', { immutable: true })],
      linkError: sig('wf.errback'),
    });
    await publisher.applyAsync(group(sig('wf.add', [1, 1]), sig('wf.add', [2, 2])));
    await publisher.applyAsync(chord([sig('wf.add', [1, 1])], sig('wf.tsum')));
    await publisher.applyAsync(
      chain(sig('wf.add', [1, 2]), group(sig('wf.add', [1])), sig('wf.tsum')),
    );

    // Act
    const { stdout } = await promisify(execFile)(
      py,
      [INSPECT_QUEUE, '--broker', url, '--queue', queue, '--validate', '--take'],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    const report = JSON.parse(stdout) as {
      messages: { problems: string[]; body_decoded: unknown[] }[];
    };
    const embeds = report.messages.map((message) => message.body_decoded[2]);
    const loaded = await loadWithCelery(py, embeds);

    // Assess
    expect(report.messages).toHaveLength(6);
    expect(report.messages.flatMap((message) => message.problems)).toEqual([]);
    expect(loaded).toEqual(expect.arrayContaining(['chain', 'callbacks', 'errbacks', 'chord']));
  });
});

/**
 * Celery's own reading of our signatures: every `callbacks`/`errbacks`/`chain`/`chord` entry
 * through `maybe_signature` (`Signature.from_dict`), cloned and frozen as a worker would.
 *
 * @returns the embed fields that held at least one signature
 */
async function loadWithCelery(python: string, embeds: unknown[]): Promise<string[]> {
  const script = `
import json, sys
from celery import Celery
from celery.canvas import Signature, maybe_signature
app = Celery('validate', broker='memory://')
seen = set()
for embed in json.loads(sys.stdin.read()):
    for field in ('callbacks', 'errbacks', 'chain'):
        for d in embed.get(field) or []:
            sig = maybe_signature(d, app=app)
            assert isinstance(sig, Signature), d
            sig.clone().freeze()
            seen.add(field)
    if embed.get('chord'):
        maybe_signature(embed['chord'], app=app).clone().freeze()
        seen.add('chord')
print(json.dumps(sorted(seen)))
`;
  const child = execFile(python, ['-c', script], { timeout: 30_000 });
  child.stdin?.end(JSON.stringify(embeds));
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`Celery could not load our signatures:\n${err}`);
  return JSON.parse(out) as string[];
}
