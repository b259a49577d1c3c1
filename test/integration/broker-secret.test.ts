/**
 * Broker credentials from Secrets Manager, end to end: the real `@aws-sdk/client-secrets-manager`
 * through Powertools' Parameters, sent to a stand-in on 127.0.0.1 by
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER`, and real brokers whose user exists only for this file: a
 * `redis-server` of its own (an ACL user; the shared one on 6379 is not touched), a three-master
 * Redis Cluster of its own (`redis+cluster://`, its AUTH token) and a RabbitMQ vhost and user of
 * its own. Each "container" is a child process built from its environment as a
 * Lambda cold start is (`BROKER_URL` without credentials, `BROKER_SECRET_ARN`): its broker, the
 * poller's relay store and the cron lock all log in with the secret, which is read once per cold
 * start; after the password is rotated (in the broker and the secret) and the connections drop,
 * the next operation reads the secret anew and succeeds. No password may reach an error or a log.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { CLUSTER_KEY_PREFIX } from '../../src/config/redis-transport-options.js';
import { cronTickKey } from '../../src/core/schedule.js';
import { BROKERS } from '../helpers/brokers.js';
import { closeConnections, createTestVhost, listQueues } from '../helpers/rabbitmq.js';
import { startThrowawayRedis } from '../helpers/redis.js';
import {
  openClusterClient,
  openNodeClient,
  type RedisCluster,
  startRedisCluster,
} from '../helpers/redis-cluster.js';
import {
  type ContainerReply,
  type SecretContainer,
  startSecretContainer,
} from '../helpers/secret-container.js';
import {
  type SecretsManagerStandIn,
  secretArn,
  secretsManagerEnv,
  startSecretsManagerStandIn,
} from '../helpers/secrets-manager.js';

const run = promisify(execFile);

/** A password holding every character a URL would misread unencoded, and a unique part. */
const newPassword = () => `p@ss:w/rd%41?#-${randomUUID().slice(0, 8)}`;

/** A broker with a user of the test's own, whose password the test can rotate. */
interface SecretBench {
  /** The broker URL without credentials. */
  readonly url: string;
  /** What the secret holds for `password`. */
  secretText(password: string): string;
  /** Sets the user's password in the broker and drops the user's connections. */
  rotate(password: string): Promise<void>;
  /** Ready messages of `queue`, read by the broker's admin. */
  queued(queue: string): Promise<number>;
  /** Whether a once-store key (a claim, a cron tick lock) exists in the broker. */
  holds(key: string): Promise<boolean>;
  remove(): Promise<void>;
}

/**
 * A `redis-server` of the test's own. With `acl`, the secret names an ACL user of its own
 * (`{"username","password"}`); without, it is the server's AUTH token as plain text, rotated with
 * `CONFIG SET requirepass`.
 */
async function redisBench(password: string, acl: boolean): Promise<SecretBench> {
  const adminPassword = acl ? `admin-${randomUUID()}` : password;
  const server = await startThrowawayRedis({ args: ['--requirepass', adminPassword] });
  // No reconnect: after a rotation of the AUTH token it would log in with the old one.
  const admin = new Redis(server.url, { password: adminPassword, retryStrategy: () => null });
  const username = `sc-app-${randomUUID().slice(0, 8)}`;
  if (acl) await admin.acl('SETUSER', username, 'on', `>${password}`, '~*', '&*', '+@all');
  const keys = new RedisKeys();
  return {
    url: server.url,
    secretText: (secret) => (acl ? JSON.stringify({ username, password: secret }) : secret),
    async rotate(next) {
      if (acl) await admin.acl('SETUSER', username, 'resetpass', `>${next}`);
      else await admin.config('SET', 'requirepass', next);
      // Redis keeps the connections that logged in before: a Lambda's would drop with time.
      // The admin's own is spared (SKIPME yes, the default).
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal');
    },
    async queued(queue) {
      const lengths = await Promise.all(keys.queueLists(queue).map((list) => admin.llen(list)));
      return lengths.reduce((sum, length) => sum + length, 0);
    },
    holds: async (key) => (await admin.exists(key)) === 1,
    async remove() {
      admin.disconnect();
      await server.stop();
    },
  };
}

/**
 * A Redis Cluster of the test's own (three masters); the secret is its AUTH token as plain text,
 * rotated with `CONFIG SET requirepass` on every node. The broker's keys carry the cluster's
 * default prefix, `{celery}:`.
 */
async function redisClusterBench(password: string): Promise<SecretBench> {
  const started = await startRedisCluster({ masters: 3, password });
  // The helpers' admin clients log in with the cluster's password of the moment.
  let cluster: RedisCluster = started;
  const keys = new RedisKeys(CLUSTER_KEY_PREFIX);
  const withAdmin = async <T>(act: (admin: ReturnType<typeof openClusterClient>) => Promise<T>) => {
    const admin = openClusterClient(cluster);
    try {
      return await act(admin);
    } finally {
      admin.disconnect();
    }
  };
  return {
    url: started.url.replace(/\/\/[^@]*@/, '//'),
    secretText: (secret) => secret,
    async rotate(next) {
      for (const node of cluster.nodes) {
        const admin = openNodeClient(cluster, node);
        await admin.config('SET', 'requirepass', next, 'masterauth', next);
        // As on a single node: the connections that logged in before are dropped.
        await admin.call('CLIENT', 'KILL', 'TYPE', 'normal');
        admin.disconnect();
      }
      cluster = { ...cluster, password: next };
    },
    queued: (queue) =>
      withAdmin(async (admin) => {
        const lengths = await Promise.all(keys.queueLists(queue).map((list) => admin.llen(list)));
        return lengths.reduce((sum, length) => sum + length, 0);
      }),
    holds: (key) => withAdmin(async (admin) => (await admin.exists(key)) === 1),
    remove: () => started.stop(),
  };
}

async function rabbitBench(password: string): Promise<SecretBench> {
  const vhost = await createTestVhost('secret');
  const username = `sc-test-secret-${randomUUID().slice(0, 8)}`;
  await run('rabbitmqctl', ['add_user', '-q', username, password]);
  await run('rabbitmqctl', ['set_permissions', '-q', '-p', vhost.name, username, '.*', '.*', '.*']);
  const queueNamed = async (name: string) =>
    (await listQueues(vhost.name)).find((queue) => queue.name === name);
  return {
    url: `amqp://127.0.0.1:5672/${encodeURIComponent(vhost.name)}`,
    secretText: (secret) => JSON.stringify({ username, password: secret }),
    async rotate(next) {
      await run('rabbitmqctl', ['change_password', '-q', username, next]);
      // RabbitMQ keeps the connections that logged in before: a Lambda's would drop with time.
      await closeConnections(vhost.name);
    },
    queued: async (name) => (await queueNamed(name))?.messages_ready ?? 0,
    holds: async (key) => (await queueNamed(key)) !== undefined,
    async remove() {
      await run('rabbitmqctl', ['delete_user', '-q', username]);
      await vhost.remove();
    },
  };
}

/** The value of a reply that must have succeeded. */
function succeeded(reply: ContainerReply): unknown {
  if (!reply.ok) throw new Error(`the container failed: ${reply.detail}`);
  return reply.value;
}

/**
 * Runs `operation` until it succeeds, at most twice: on Redis the command that meets the refusal
 * itself may fail (ioredis reconnects in the background), the one after it must not.
 */
async function untilHealed(
  operation: () => Promise<ContainerReply>,
): Promise<{ value: unknown; failures: string[] }> {
  const first = await operation();
  if (first.ok) return { value: first.value, failures: [] };
  return { value: succeeded(await operation()), failures: [first.detail] };
}

let standIn: SecretsManagerStandIn;
const containers: SecretContainer[] = [];

beforeAll(async () => {
  standIn = await startSecretsManagerStandIn();
});

afterAll(async () => {
  await Promise.all(containers.splice(0).map((container) => container.stop()));
  await standIn.close();
});

/** The benches, by name: each makes a broker whose user's first password is `password`. */
const BENCH_FACTORIES: Record<string, (password: string) => Promise<SecretBench>> = {
  'redis (ACL user)': (password) => redisBench(password, true),
  'redis (AUTH token)': (password) => redisBench(password, false),
  'redis cluster (AUTH token)': redisClusterBench,
  rabbitmq: rabbitBench,
};

/** The benches of the brokers of `BROKERS`: Redis with an ACL user, an AUTH token, a cluster. */
const BENCHES = Object.keys(BENCH_FACTORIES).filter((name) =>
  BROKERS.includes(name === 'rabbitmq' ? 'rabbitmq' : 'redis'),
);

describe.each(BENCHES)('broker credentials from a secret on %s', (variant) => {
  const kind = variant === 'rabbitmq' ? 'rabbitmq' : 'redis';
  const first = newPassword();
  const arn = secretArn(`sc-${kind}`);
  const queue = `sc-secret-${randomUUID().slice(0, 8)}`;
  const task = `it.secret_${randomUUID().replaceAll('-', '')}`;
  let bench: SecretBench;

  beforeAll(async () => {
    bench = await (BENCH_FACTORIES[variant] as (password: string) => Promise<SecretBench>)(first);
    standIn.put(arn, bench.secretText(first));
  });

  afterAll(async () => {
    await bench?.remove();
  });

  /** A cold start: a new container with the deployed functions' environment. */
  function coldStart(): SecretContainer {
    const container = startSecretContainer({
      ...secretsManagerEnv(standIn),
      BROKER_URL: bench.url,
      BROKER_SECRET_ARN: arn,
      // Inherited values would send the locks or stores elsewhere, or pick one broker's build.
      CRON_LOCK_URL: '',
      ONCE_STORE_URL: '',
      BROKER_VISIBILITY_TIMEOUT: '',
      SERVERLESS_CELERY_BROKER: '',
      SC_TEST_QUEUE: queue,
      SC_TEST_TASK: task,
    });
    containers.push(container);
    return container;
  }

  it('logs in with the secret, reads it once per cold start, and heals after a rotation', async () => {
    // Prepare
    const second = newPassword();
    const container = coldStart();
    const tick = '2026-03-01T10:15:00.000Z';
    const relayKey = `sc-relay-${randomUUID()}`;

    // Act: a cold start's publishes, relay claim and cron tick
    succeeded(await container.call({ op: 'publish' }));
    succeeded(await container.call({ op: 'publish' }));
    const claimed = succeeded(await container.call({ op: 'claim', key: relayKey }));
    const ticked = succeeded(await container.call({ op: 'cron', time: tick }));

    // Assess: all in the broker, with one read of the secret
    expect(claimed).toBe(true);
    expect(ticked).toMatchObject({ published: true, tick });
    expect(await bench.queued(queue)).toBe(3);
    expect(await bench.holds(relayKey)).toBe(true);
    expect(await bench.holds(cronTickKey(task, tick))).toBe(true);
    expect(standIn.callsOf(arn)).toBe(1);

    // Act: rotate the password in the broker and the secret, then use the warm container
    await bench.rotate(second);
    standIn.put(arn, bench.secretText(second));
    const received = await untilHealed(() => container.call({ op: 'receive' }));
    const reclaimed = await untilHealed(() =>
      container.call({ op: 'claim', key: `${relayKey}-after` }),
    );

    // Assess: healed, with one more read (past the cache), and the broker emptied
    expect(received.value).toBe(3);
    expect(reclaimed.value).toBe(true);
    expect(await bench.queued(queue)).toBe(0);
    expect(await bench.holds(`${relayKey}-after`)).toBe(true);
    expect(standIn.callsOf(arn)).toBe(2);
    // RabbitMQ connects anew for the operation itself; on Redis at most the first one fails.
    const failures = [...received.failures, ...reclaimed.failures];
    if (kind === 'rabbitmq') expect(failures).toEqual([]);
    for (const failure of failures) expect(failure).toMatch(/authentication failed|WRONGPASS/);

    // Act: another cold start, with the rotated secret (the first one gone: on RabbitMQ its
    // consumer would take the message)
    await container.stop();
    const next = coldStart();
    succeeded(await next.call({ op: 'publish' }));

    // Assess: one read for it, and no password anywhere a log would show
    expect(await bench.queued(queue)).toBe(1);
    expect(standIn.callsOf(arn)).toBe(3);
    expect(new Set(standIn.targets)).toEqual(new Set(['secretsmanager.GetSecretValue']));
    await next.stop();
    const logs = [container.output(), next.output(), ...failures].join('\n');
    // The task function's attempt lines are among them (three runs, as Powertools writes them).
    expect(logs.match(/"message":"task [^"]+ succeeded"/g)).toHaveLength(3);
    for (const password of [first, second]) {
      expect(logs).not.toContain(password);
      expect(logs).not.toContain(encodeURIComponent(password));
    }
  });
});
