/**
 * The Redis broker on a `rediss+cluster://` URL, against a throw-away cluster of this file: TLS
 * with a private CA and a password given to every node (a duplicate client too), and refusals
 * that say why and never show the password. Outages are in redis-cluster-outage.test.ts; the
 * broker secret on a cluster (Secrets Manager, rotation) is tested with the other brokers' in
 * broker-secret.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { duplicateRedisClient, loadRedisClient } from '../../src/brokers/redis/redis-client.js';
import { parseBrokerConfig, redactUrl } from '../../src/config/broker-config.js';
import { BrokerError, InvalidConfigError } from '../../src/core/errors.js';
import {
  makeSelfSignedCertificate,
  REDIS_HOST,
  type SelfSignedCertificate,
  taskMessage,
  uniqueQueue,
} from '../helpers/redis.js';
import { openNodeClient, type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.js';
import {
  closeOpened,
  endpointOf,
  failureOf,
  keepClient,
  openBroker,
  openClient,
  roundTrip,
} from '../helpers/redis-cluster-broker.js';
import { keySlot, slotOwner } from '../helpers/redis-cluster-slots.js';

/** Characters a URL would misread unencoded, and `%41`, which must reach Redis as written. */
const PASSWORD = `c1uster:p@ss/w%41rd-${randomUUID().slice(0, 8)}`;

let certificate: SelfSignedCertificate;
/** Three TLS masters requiring {@link PASSWORD}. */
let secured: RedisCluster;

/** Everything a log could show of `error`: message, String(), inspect(), for it and its causes. */
function printed(error: unknown): string {
  const texts: string[] = [];
  for (let current = error; current != null; current = (current as Error).cause) {
    texts.push(String(current), inspect(current, { depth: 10 }), (current as Error).message);
  }
  return texts.join('\n');
}

function expectNoPassword(error: unknown, ...passwords: string[]): void {
  const text = printed(error);
  for (const password of passwords) {
    expect(text).not.toContain(password);
    expect(text).not.toContain(encodeURIComponent(password));
  }
}

beforeAll(async () => {
  certificate = await makeSelfSignedCertificate();
  secured = await startRedisCluster({ masters: 3, tls: certificate, password: PASSWORD });
  await loadRedisClient();
});

afterEach(closeOpened);

afterAll(async () => {
  await secured?.stop();
  await certificate?.remove();
});

describe('a rediss+cluster:// broker with the password in its URL', () => {
  it('publishes, receives and settles over TLS when told the CA', async () => {
    // Prepare
    const broker = openBroker({ url: secured.url, tls: { ca: certificate.pem } });

    // Act
    const outcome = await roundTrip(broker);

    // Assess
    expect(secured.url).toMatch(/^rediss\+cluster:\/\/:[^@]+@127\.0\.0\.1:\d+,/);
    expect(outcome).toEqual({ received: 2, left: { ready: 0, unacked: 0 } });
  });

  it('gives every node the password and the CA, and so does a duplicate', async () => {
    // Prepare: keys whose slots belong to different masters
    const client = openClient(secured.url, { ca: certificate.pem });
    const keys = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];
    const owners = await Promise.all(
      keys.map(async (key) => (await slotOwner(secured, await keySlot(secured, key))).port),
    );

    // Act
    for (const key of keys) await client.set(key, `value of ${key}`);
    const copy = duplicateRedisClient(client);
    keepClient(copy);

    // Assess
    expect(new Set(owners)).toEqual(new Set(secured.ports));
    for (const key of keys) expect(await copy.get(key)).toBe(`value of ${key}`);
  });

  it('fails at once with a BrokerError about the certificate when not told the CA', async () => {
    // Prepare
    const broker = openBroker({ url: secured.url });

    // Act
    const { error, ms } = await failureOf(() => broker.publish([taskMessage(uniqueQueue())]));

    // Assess: ioredis drops the TLS error itself; the message says where to look
    expect(error).toBeInstanceOf(BrokerError);
    expect(error.message).toMatch(
      new RegExp(`^Redis at ${endpointOf(secured)}: publish to sc-test-[^ ]+ failed: `),
    );
    expect(error.message).toContain('no node of the cluster answered');
    expect(error.message).toContain('TLS certificate trusted (tls.ca)');
    expect(ms).toBeLessThan(3000);
    expectNoPassword(error, PASSWORD);
  });

  it.each([
    { problem: 'a wrong password', password: `wrong-${PASSWORD}`, reason: 'authentication failed' },
    { problem: 'no password', password: undefined, reason: 'authentication required' },
  ])('says "$reason", never a password, on $problem', async ({ password, reason }) => {
    // Prepare
    const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
    const url = secured.url.replace(/\/\/[^@]+@/, `//${auth}`);
    const broker = openBroker({ url, tls: { ca: certificate.pem } });

    // Act
    const { error, ms } = await failureOf(() => broker.publish([taskMessage(uniqueQueue())]));

    // Assess
    expect(error).toBeInstanceOf(BrokerError);
    expect(error.message).toContain(`Redis at ${endpointOf(secured)}: `);
    expect(error.message).toContain(reason);
    expect(ms).toBeLessThan(3000);
    expectNoPassword(error, PASSWORD, ...(password === undefined ? [] : [password]));
  });

  it('shows the URL and its nodes without the password', async () => {
    // Act
    const redacted = redactUrl(secured.url);
    const refusal = await failureOf(async () =>
      parseBrokerConfig({ kind: 'redis', url: secured.url, secretArn: 'arn:sm:broker' }),
    );

    // Assess
    const nodes = secured.ports.map((port) => `${REDIS_HOST}:${port}`).join(',');
    expect(redacted).toBe(`rediss+cluster://:***@${nodes}/0`);
    expect(refusal.error).toBeInstanceOf(InvalidConfigError);
    expectNoPassword(refusal.error, PASSWORD);
  });

  it('logs in as an ACL user on every node, limited to the broker keys', async () => {
    // Prepare: ACL users are per node; the user may touch only keys under the prefix
    const user = `worker-${randomUUID().slice(0, 8)}`;
    const password = `acl:${randomUUID()}`;
    for (const node of secured.nodes) {
      const admin = openNodeClient(secured, node);
      await admin.acl('SETUSER', user, 'on', `>${password}`, '~{celery}:*', '&*', '+@all');
      await admin.quit();
    }
    const credentials = `${user}:${encodeURIComponent(password)}@`;
    const url = secured.url.replace(/\/\/[^@]+@/, `//${credentials}`);

    // Act
    const outcome = await roundTrip(openBroker({ url, tls: { ca: certificate.pem } }));
    const refused = await failureOf(() =>
      openBroker({ url: url.replace(user, `${user}-x`), tls: { ca: certificate.pem } }).publish([
        taskMessage(uniqueQueue()),
      ]),
    );

    // Assess
    expect(outcome).toEqual({ received: 2, left: { ready: 0, unacked: 0 } });
    expect(refused.error.message).toContain('authentication failed');
    expectNoPassword(refused.error, password, PASSWORD);
  });
});
