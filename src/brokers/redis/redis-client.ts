/**
 * ioredis, imported once and on first use: a process that loads the library without connecting
 * to Redis (a CLI call on RabbitMQ, an app importing the package) does not pay for loading it
 * (about 120 ms on this machine), and a bundle built for Redis inlines it as before.
 *
 * Every Redis connection of the package is made here, from a URL of either form: a single node
 * (`redis://`, `rediss://`) or a cluster (`redis+cluster://`, `rediss+cluster://`, redis-url.ts).
 */
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { isTlsRedisUrl, splitClusterUrl } from '../../config/redis-url.js';

/** A client of either kind. Both have the same commands; a cluster routes each by its keys. */
export type RedisClient = Redis | Cluster;

let ioredis: { Redis: typeof Redis; Cluster: typeof Cluster } | undefined;

/** Imports ioredis (once). */
export async function loadRedisClient(): Promise<void> {
  if (ioredis) return;
  const module = await import('ioredis');
  ioredis = { Redis: module.Redis, Cluster: fastFailing(module.Cluster) };
}

/**
 * A cluster client whose commands fail fast while no node answers, as a single node's do with
 * one retry per command: ioredis' `Cluster` keeps them queued for as long as it keeps trying to
 * connect, i.e. forever. Ours gives up after a second failed round (`clusterRetryStrategy`
 * below), failing what waits, and starts a new round at the next command, so a long-lived
 * worker reconnects once the cluster is back.
 */
function fastFailing(Base: typeof Cluster): typeof Cluster {
  class FastFailingCluster extends Base {
    #closed = false;

    // ioredis' copy is a plain Cluster, closed for good once an outage outlasts its retries (a
    // result backend's subscriber is such a copy): made again as ours, from the copy's seeds and
    // options (ioredis keeps the seeds private).
    override duplicate(...args: Parameters<Cluster['duplicate']>): Cluster {
      const copy = super.duplicate(...args);
      const { startupNodes } = copy as unknown as { startupNodes: ClusterNode[] };
      return new FastFailingCluster(
        startupNodes,
        copy.options as ConstructorParameters<typeof FastFailingCluster>[1],
      );
    }

    override sendCommand(...args: Parameters<Cluster['sendCommand']>): unknown {
      if (this.status === 'end' && !this.#closed) {
        // Rejections reach the commands queued meanwhile; this promise has no one else to tell.
        this.connect().catch(() => {});
      }
      return super.sendCommand(...args);
    }

    override disconnect(reconnect?: boolean): void {
      if (!reconnect) this.#closed = true;
      super.disconnect(reconnect);
    }

    override quit(...args: Parameters<Cluster['quit']>): Promise<'OK'> {
      this.#closed = true;
      return super.quit(...args);
    }
  }
  // Only the reply-mapping generic of the constructor is lost; we make legacy-mapping clients.
  return FastFailingCluster as unknown as typeof Cluster;
}

/**
 * Redirections a cluster command may follow before it fails (ioredis: 16). While a slot migrates,
 * a script or transaction that names a key the node does not hold (ours name lists that are
 * mostly empty) gets TRYAGAIN on the source and on the target alike; ioredis retries it after
 * 100 ms on a random master, and a round may cost a MOVED and an ASK as well. With 16, receives
 * failed once a slot stayed half moved 0.7 s; with 64 none did in 2.6 s, some did in 4 s
 * (test/integration/redis-cluster-migration.test.ts holds it 1 s). MOVED and ASK are followed at
 * once, so a redirection loop still fails within milliseconds.
 */
const MAX_REDIRECTIONS = 64;

/** Options of {@link createRedisClient}. */
export interface RedisClientOptions {
  /** Milliseconds to wait for a connection (and, in a cluster, for its slot map). */
  readonly connectTimeoutMs?: number;
  /** Name shown in `CLIENT LIST`. */
  readonly connectionName?: string;
  /** TLS settings, used only with a `rediss://` or `rediss+cluster://` URL. */
  readonly tls?: { readonly ca?: string | undefined; readonly rejectUnauthorized: boolean };
}

/**
 * A lazily connecting client for `url`, commands failing fast while Redis is unreachable (one
 * retry: a producer answers 503 rather than queueing for minutes). Call after
 * {@link loadRedisClient} resolved.
 *
 * A cluster URL makes an ioredis `Cluster` seeded with its hosts, the URL's credentials and TLS
 * given to every node connection, and host names kept as the slot map gives them: ElastiCache's
 * TLS certificates name hosts, not the addresses they resolve to.
 *
 * @throws Error when ioredis was not loaded yet (a programming error)
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): RedisClient {
  if (!ioredis) throw new Error('ioredis is not loaded yet: await loadRedisClient() first');
  const tlsWanted = isTlsRedisUrl(url);
  const nodeOptions: RedisOptions = {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    ...(options.connectTimeoutMs === undefined ? {} : { connectTimeout: options.connectTimeoutMs }),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
    // ioredis turns TLS on for rediss:// by itself; these only say which certificate to trust.
    ...(options.tls && tlsWanted ? { tls: tlsOptions(options.tls) } : {}),
  };
  const cluster = splitClusterUrl(url);
  if (!cluster) {
    return new ioredis.Redis(url, {
      ...nodeOptions,
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    });
  }
  const single = new URL(cluster.single);
  const clusterOptions: ClusterOptions = {
    lazyConnect: true,
    redisOptions: {
      ...nodeOptions,
      ...(single.username ? { username: decodeURIComponent(single.username) } : {}),
      ...(single.password ? { password: decodeURIComponent(single.password) } : {}),
      ...(tlsWanted && !nodeOptions.tls ? { tls: {} } : {}),
    },
    dnsLookup: (address, callback) => callback(null, address),
    // See fastFailing: one more round after a failed one, then what waits fails.
    clusterRetryStrategy: (attempt) => (attempt > 1 ? null : 100),
    maxRedirections: MAX_REDIRECTIONS,
    ...(options.connectTimeoutMs === undefined
      ? {}
      : { slotsRefreshTimeout: options.connectTimeoutMs }),
  };
  return new ioredis.Cluster(
    cluster.nodes.map(({ host, port }) => ({ host, port })),
    clusterOptions,
  );
}

/**
 * A new client like `client`, on connections of its own (for a subscription, or a blocking
 * command, which would hold up everything else sent on a shared connection).
 */
export function duplicateRedisClient(client: RedisClient): RedisClient {
  // The same call either way: TypeScript cannot call `duplicate` on the union (the two take
  // different arguments), only on each kind.
  return isCluster(client) ? client.duplicate() : client.duplicate();
}

/** True for a cluster client. */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster;
}

function tlsOptions(tls: NonNullable<RedisClientOptions['tls']>): RedisOptions['tls'] {
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
  };
}
