/**
 * The Redis adapter's connections and what it sends, against real servers: URL forms (database,
 * password, ACL user, TLS), failures that name the host and never the password, lazy and reused
 * connections, the eviction-policy warning, command traces of publish and receive, and the key
 * prefix on every key. Uses
 * database 15 of 127.0.0.1:6379 and throw-away `redis-server` children for every setting the
 * shared server must keep.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import type { DeadLetterReason } from '../../src/core/dead-letter.js';
import { BrokerError } from '../../src/core/errors.js';
import { createRetryMessage } from '../../src/core/message.js';
import { expectDecoded } from '../helpers/decode.js';
import {
  freePort,
  makeSelfSignedCertificate,
  manualClock,
  REDIS_HOST,
  recordingLogger,
  redisBench,
  redisUrl,
  type SelfSignedCertificate,
  startThrowawayRedis,
  type ThrowawayRedis,
  taskMessage,
  unackedTagsOf,
} from '../helpers/redis.js';

const DB = 15;
const SEP = '\x06\x16';
const bench = redisBench(DB);
const { admin, keys } = bench;
const POISON: DeadLetterReason = {
  reason: 'poison',
  detail: 'kept failing',
  task: null,
  id: null,
  retries: null,
};

/**
 * Every command a server runs from now on, as `client <name>` or `lua <name>` (in scripts), and
 * beside each the connection that sent it (`host:port`, or `lua`).
 */
async function traceCommands(
  server: Redis,
): Promise<{ commands: string[]; sources: string[]; stop(): void }> {
  const monitor = await server.monitor();
  const commands: string[] = [];
  const sources: string[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    commands.push(`${source === 'lua' ? 'lua' : 'client'} ${args[0]?.toLowerCase()}`);
    sources.push(source);
  });
  return { commands, sources, stop: () => monitor.disconnect() };
}

/** The traced commands up to now: sends a marker and waits for the trace to show it. */
async function tracedSoFar(server: Redis, trace: { commands: string[] }): Promise<string[]> {
  await server.echo('sc-trace-end');
  await expect.poll(() => trace.commands.at(-1)).toBe('client echo');
  return trace.commands.slice(0, -1);
}

afterEach(() => bench.cleanup());
afterAll(() => bench.close());

describe('connecting', () => {
  const password = `pw-${randomUUID()}`;
  const aclUser = `sc-test-${randomUUID()}`;
  let secured: ThrowawayRedis;
  let tlsServer: ThrowawayRedis;
  let certificate: SelfSignedCertificate;

  beforeAll(async () => {
    certificate = await makeSelfSignedCertificate();
    [secured, tlsServer] = await Promise.all([
      startThrowawayRedis({ args: ['--requirepass', password] }),
      startThrowawayRedis({ tls: certificate }),
    ]);
    await admin.acl('SETUSER', aclUser, 'on', `>${password}`, '~*', '&*', '+@all');
  });

  afterAll(async () => {
    await admin.acl('DELUSER', aclUser);
    await Promise.all([secured?.stop(), tlsServer?.stop()]);
    await certificate?.remove();
  });

  /** Each URL form, and how to reach the database it names without parsing that URL. */
  const URL_FORMS: {
    form: string;
    target: () => { url: string; direct: RedisOptions; tls?: { ca: string } };
  }[] = [
    {
      form: 'redis://host:port/db',
      target: () => ({ url: redisUrl(DB), direct: { port: 6379, db: DB } }),
    },
    {
      form: 'redis://:password@host:port/db',
      target: () => ({
        url: `redis://:${password}@${REDIS_HOST}:${secured.port}/3`,
        direct: { port: secured.port, db: 3, password },
      }),
    },
    {
      form: 'redis://user:password@host:port/db (ACL user)',
      target: () => ({
        url: `redis://${aclUser}:${password}@${REDIS_HOST}:6379/${DB}`,
        direct: { port: 6379, db: DB },
      }),
    },
    {
      form: 'rediss://host:port/db (TLS)',
      target: () => ({
        url: `rediss://${REDIS_HOST}:${tlsServer.port}/4`,
        tls: { ca: certificate.pem },
        direct: { port: tlsServer.port, db: 4, tls: { ca: certificate.pem } },
      }),
    },
  ];

  it.each(URL_FORMS)('connects from a $form url, to the database it names', async ({ target }) => {
    // Prepare
    const { url, tls, direct } = target();
    const queue = bench.newQueue();
    const broker = bench.openBroker({ url, ...(tls ? { tls } : {}) });
    const inspector = new Redis({ host: REDIS_HOST, ...direct });

    // Act
    await broker.publish([taskMessage(queue)]);

    // Assess
    try {
      expect(await inspector.llen(queue)).toBe(1);
    } finally {
      await inspector.del(queue, keys.binding(queue).key);
      await inspector.quit();
    }
  });

  it.each([
    { trust: 'any certificate', tls: () => ({ rejectUnauthorized: false }) },
    { trust: 'the certificate given as CA', tls: () => ({ ca: certificate.pem }) },
  ])('trusts $trust over rediss:// when configured to', async ({ tls }) => {
    // Prepare
    const url = `rediss://${REDIS_HOST}:${tlsServer.port}/0`;
    const broker = bench.openBroker({ url, tls: tls() });

    // Act
    const stats = await broker.stats(bench.newQueue());

    // Assess
    expect(stats).toMatchObject({ ready: 0, unacked: 0 });
  });

  it.each([
    {
      problem: 'a wrong password of an ACL user',
      url: () => `redis://${aclUser}:wrong-${password}@${REDIS_HOST}:6379/${DB}`,
      reason: 'authentication failed',
    },
    {
      problem: 'a wrong password',
      url: () => `redis://:wrong-${password}@${REDIS_HOST}:${secured.port}/0`,
      reason: 'authentication failed',
    },
    {
      problem: 'no password where one is required',
      url: () => `redis://${REDIS_HOST}:${secured.port}/0`,
      reason: 'authentication required',
    },
    {
      problem: 'a port nobody listens on',
      url: async () => `redis://:${password}@${REDIS_HOST}:${await freePort()}/0`,
      reason: 'connection refused',
    },
    {
      problem: 'a host that does not exist',
      url: () => `redis://:${password}@no-such-host.invalid:6379/0`,
      reason: 'host not found',
    },
    {
      problem: 'a TLS certificate nobody said to trust',
      url: () => `rediss://:${password}@${REDIS_HOST}:${tlsServer.port}/0`,
      reason: 'certificate',
    },
  ])('fails with an error naming the host, never the password, on $problem', async (row) => {
    // Prepare
    const url = await row.url();
    const broker = bench.openBroker({ url, connectTimeoutMs: 2000 });
    const { hostname, port, pathname } = new URL(url);

    // Act
    const failure = await broker.stats(bench.newQueue()).catch((error: unknown) => error);

    // Assess
    expect(failure).toBeInstanceOf(BrokerError);
    expect((failure as Error).message).toContain(`Redis at ${hostname}:${port}${pathname}: `);
    expect((failure as Error).message).toContain(row.reason);
    expect(inspect(failure, { depth: 10 })).not.toContain(password);
  });

  it('connects lazily, on the first operation, then reuses its connections', async () => {
    // Prepare
    const inspector = new Redis({ host: REDIS_HOST, port: secured.port, password });
    const ourConnections = async () =>
      String(await inspector.client('LIST'))
        .split('\n')
        .flatMap((line) => /name=(serverless-celery:\S+)/.exec(line)?.[1] ?? [])
        .sort();
    const queue = bench.newQueue();
    const broker = bench.openBroker({
      url: `redis://:${password}@${REDIS_HOST}:${secured.port}/0`,
    });
    // Give an eager client every chance to connect before looking.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const beforeFirstUse = await ourConnections();

    // Act
    await broker.publish([taskMessage(queue), taskMessage(queue)]);
    const deliveries = await broker.receive(queue, { max: 1, waitMs: 0 });
    await broker.settle(deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })));
    for (let round = 0; round < 3; round++) {
      await broker.receive(queue, { max: 5, waitMs: 20 });
      await broker.receive(queue, { max: 5, waitMs: 20 });
      await broker.stats(queue);
    }

    // Assess
    try {
      expect(beforeFirstUse).toEqual([]);
      expect(await ourConnections()).toEqual([
        'serverless-celery:blocking',
        'serverless-celery:main',
      ]);
    } finally {
      await inspector.quit();
    }
  });
});

describe('start-up checks', () => {
  let evicting: ThrowawayRedis;

  beforeAll(async () => {
    evicting = await startThrowawayRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
  });

  afterAll(() => evicting?.stop());

  it.each([
    { policy: 'allkeys-lru', url: () => evicting.url, warnings: 1, says: 'warns once' },
    { policy: 'noeviction', url: () => redisUrl(DB), warnings: 0, says: 'does not warn' },
  ])('$says when maxmemory-policy is $policy', async (row) => {
    // Prepare
    const logger = recordingLogger();
    const broker = bench.openBroker({ url: row.url() }, { logger });
    const queue = bench.newQueue();

    // Act
    await broker.stats(queue);
    await broker.publish([taskMessage(queue)]);
    await broker.stats(queue);

    // Assess
    expect(logger.warnings).toHaveLength(row.warnings);
    for (const warning of logger.warnings) {
      expect(warning).toContain(`maxmemory-policy is ${row.policy}`);
      expect(warning).toContain('noeviction');
    }
  });
});

describe('commands sent', () => {
  let server: ThrowawayRedis;
  let inspector: Redis;

  beforeAll(async () => {
    server = await startThrowawayRedis({ args: ['--maxmemory-policy', 'noeviction'] });
    inspector = new Redis(server.url);
  });

  afterAll(async () => {
    await inspector?.quit();
    await server?.stop();
  });

  it('publishes a batch as one MULTI transaction, one LPUSH per list', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker({ url: server.url });
    await broker.stats(queue);
    const trace = await traceCommands(inspector);

    // Act
    await broker.publish([
      taskMessage(queue),
      taskMessage(queue, { priority: 9 }),
      taskMessage(queue),
    ]);

    // Assess
    const commands = await tracedSoFar(inspector, trace);
    trace.stop();
    // Two lists (priority steps 0 and 9): the two step-0 messages share one LPUSH.
    expect(commands).toEqual([
      'client multi',
      'client sadd',
      'client lpush',
      'client lpush',
      'client exec',
    ]);
  });

  it('publishes nothing of a batch Redis refuses, and all of it once Redis accepts', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker({ url: server.url });
    await broker.stats(queue);
    const batch = [taskMessage(queue), taskMessage(queue, { priority: 9 })];
    await inspector.config('SET', 'maxmemory', '1');

    // Act
    const refused = await broker.publish(batch).catch((error: unknown) => error);
    await inspector.config('SET', 'maxmemory', '0');
    const keysAfterRefusal = await inspector.exists(
      ...keys.queueLists(queue),
      keys.binding(queue).key,
    );
    await broker.publish(batch);

    // Assess
    expect(refused).toBeInstanceOf(BrokerError);
    expect((refused as Error).message).toContain('publish 2 message(s) failed');
    expect(keysAfterRefusal).toBe(0);
    expect(await inspector.llen(queue)).toBe(1);
    expect(await inspector.llen(`${queue}${SEP}9`)).toBe(1);
    expect(await inspector.smembers(keys.binding(queue).key)).toEqual([
      `${queue}${SEP}${SEP}${queue}`,
    ]);
  });

  it('takes a message arriving at a waiting receive with the script queued behind BLMOVE on its connection', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker({ url: server.url });
    const publisher = bench.openBroker({ url: server.url });
    await broker.stats(queue);
    await publisher.stats(queue);
    const trace = await traceCommands(inspector);

    // Act
    const receiving = broker.receive(queue, { max: 10, waitMs: 5_000 });
    await expect.poll(() => trace.commands.includes('client blmove')).toBe(true);
    await publisher.publish([taskMessage(queue)]);
    const deliveries = await receiving;

    // Assess
    await tracedSoFar(inspector, trace);
    trace.stop();
    const receiver = trace.commands.flatMap((command, index) =>
      /^client (blmove|evalsha|eval)$/.test(command)
        ? [[command.replace('evalsha', 'eval'), trace.sources[index]] as const]
        : [],
    );
    expect(deliveries).toHaveLength(1);
    // The first receive runs on the main connection; once BLMOVE returns, the script already
    // sent behind it on the blocking connection runs with no round trip in between.
    expect(receiver.map(([command]) => command)).toEqual([
      'client eval',
      'client blmove',
      'client eval',
    ]);
    expect(receiver[2]?.[1]).toBe(receiver[1]?.[1]);
    expect(receiver[0]?.[1]).not.toBe(receiver[1]?.[1]);
    await broker.settle(deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })));
  });

  it('settles a batch as one MULTI with one ZREM and one HDEL for all its messages', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker({ url: server.url });
    await broker.publish([taskMessage(queue), taskMessage(queue), taskMessage(queue)]);
    const deliveries = await broker.receive(queue, { max: 3, waitMs: 0 });
    // kombu's unacked hash and index are shared by every queue of the database.
    const heldBefore = [
      await inspector.hlen(keys.unacked),
      await inspector.zcard(keys.unackedIndex),
    ];
    const trace = await traceCommands(inspector);

    // Act
    await broker.settle(deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })));

    // Assess
    const commands = await tracedSoFar(inspector, trace);
    trace.stop();
    expect(deliveries).toHaveLength(3);
    expect(commands).toEqual(['client multi', 'client zrem', 'client hdel', 'client exec']);
    expect([await inspector.hlen(keys.unacked), await inspector.zcard(keys.unackedIndex)]).toEqual(
      heldBefore.map((count) => count - 3),
    );
  });

  it('receives with one script that pops and records, no client command between', async () => {
    // Prepare
    const queue = bench.newQueue();
    const broker = bench.openBroker({ url: server.url });
    await broker.publish([taskMessage(queue), taskMessage(queue)]);
    const trace = await traceCommands(inspector);

    // Act
    const deliveries = await broker.receive(queue, { max: 2, waitMs: 0 });

    // Assess
    const commands = await tracedSoFar(inspector, trace);
    trace.stop();
    expect(deliveries).toHaveLength(2);
    const fromClient = new Set(commands.filter((command) => command.startsWith('client')));
    expect([...fromClient].every((command) => /^client eval(sha)?$/.test(command))).toBe(true);
    expect(commands.filter((command) => command.startsWith('lua'))).toEqual([
      'lua rpop',
      'lua hset',
      'lua zadd',
      'lua hset',
      'lua zadd',
    ]);
  });
});

describe('key prefix', () => {
  it("puts kombu's global_keyprefix on every key it writes", async () => {
    // Prepare
    const queue = bench.newQueue();
    const prefix = bench.newPrefix();
    const clock = manualClock();
    const broker = bench.openBroker(
      { keyPrefix: prefix, visibilityTimeout: 1 },
      { now: clock.now },
    );
    const prefixed = new RedisKeys(prefix);
    await broker.publish(
      [1, 2, 3, 4].map((n) => taskMessage(queue, { priority: n === 4 ? 9 : 0 })),
    );

    // Act
    const [dead, parked, held] = await broker.receive(queue, { max: 3, waitMs: 0 });
    if (!dead || !parked || !held) throw new Error('expected three deliveries');
    const dueAt = new Date(clock.now() + 60_000);
    const retry = createRetryMessage(expectDecoded(parked.result), dueAt);
    await broker.settle([
      { delivery: dead, settlement: { kind: 'dead-letter', reason: POISON } },
      { delivery: parked, settlement: { kind: 'retry-later', message: retry, dueAt } },
    ]);
    const stats = await broker.stats(queue);
    const heldUnderPrefix = await unackedTagsOf(admin, prefixed, [queue]);
    const heldWithoutPrefix = await unackedTagsOf(admin, keys, [queue]);
    clock.advance(2000);
    const restored = await broker.restoreStale();

    // Assess
    expect(stats).toEqual({ queue, ready: 1, unacked: 1, delayed: 1, deadLettered: 1 });
    expect([heldUnderPrefix.length, heldWithoutPrefix.length]).toEqual([1, 0]);
    expect(restored).toBe(1);
    const [, found] = await admin.scan('0', 'MATCH', `*${queue}*`, 'COUNT', 100_000);
    expect(found.sort()).toEqual(
      [
        `${prefix}${queue}`,
        `${prefix}${queue}${SEP}9`,
        `${prefix}_kombu.binding.${queue}`,
        prefixed.delayed(queue),
        prefixed.deadLetter(`${queue}.dlq`),
      ].sort(),
    );
    expect(await admin.llen(`${prefix}${queue}`)).toBe(1);
  });
});
