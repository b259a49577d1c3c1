/**
 * The Redis broker, wire-compatible with kombu's Redis transport: Python Celery producers and
 * workers on the same database read what we write and we read what they write.
 *
 * Beyond kombu: receiving is atomic (pop + record in one script), delays live in a sorted set
 * rather than in a worker's memory (an eta past the visibility timeout runs once, not twice),
 * and bad messages go to a dead-letter list with a reason instead of stopping the consumer.
 */
import { randomUUID } from 'node:crypto';
import type { RedisBrokerConfig } from '../../config/broker-config.js';
import { brokerUrlOf } from '../../config/broker-secret.js';
import { type DeadLetterReason, deadLetterReason } from '../../core/dead-letter.js';
import { isPlainObject } from '../../core/json.js';
import type { TaskMessage } from '../../core/message.js';
import {
  decodeRedisMessage,
  decodeUnackedEntry,
  encodeRedisEnvelopeFromRaw,
  encodeRedisMessage,
  KOMBU_SEPARATOR,
  redisPriorityKey,
} from '../../core/redis-codec.js';
import { replayMessage } from '../../core/replay.js';
import type {
  Broker,
  BrokerLogger,
  BrokerOptionsBase,
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterItem,
  Delivery,
  QueueStats,
  ReceiveOptions,
  SettleItem,
} from '../broker.js';
import { RedisKeys } from './keys.js';
import { loadRedisClient } from './redis-client.js';
import {
  connectRedis,
  isRedisAuthFailure,
  redisFailure,
  type ScriptedRedis,
} from './redis-connection.js';

/** Options of {@link RedisBroker}. Undeclared queues dead-letter into `<queue>.dlq`. */
export interface RedisBrokerOptions extends BrokerOptionsBase {
  readonly config: RedisBrokerConfig;
}

/**
 * How long our hold of kombu's restore mutex lasts if we die holding it. kombu takes it for 300 s,
 * and a worker killed during a restore pass (SIGKILL, a Lambda timeout) then stops every restore
 * for five minutes: its held messages stayed stranded that long in the reliability suite. A pass
 * moves at most RESTORE_BATCH entries, two round trips each, well within 30 s; and each entry is
 * restored by compare-and-swap, so a pass overlapping ours after the mutex lapsed restores nothing
 * twice.
 */
const RESTORE_MUTEX_TTL_MS = 30_000;
/** Most envelopes per LPUSH of a publish (the arguments of one call stay few). */
const LPUSH_CHUNK = 1000;
/** How many stale entries one restore pass handles. */
const RESTORE_BATCH = 1000;
/**
 * Longest single block while waiting for messages. Only the step-0 list can be waited on
 * (BLMOVE takes one key); lists of other priorities are checked at least this often.
 */
const MAX_BLOCK_MS = 250;

interface Held {
  readonly tag: string;
  readonly raw: string;
}

/** A dead-letter record, or `null` when the list holds something else. */
function parseDeadLetter(record: string): DeadLetterEntry | null {
  try {
    const entry = JSON.parse(record) as DeadLetterEntry;
    return typeof entry?.raw === 'string' ? entry : null;
  } catch {
    // Not one of our records (someone pushed onto the list by hand): leave it alone.
    return null;
  }
}

/** A Redis broker. Create it once per process and reuse it across invocations. */
export class RedisBroker implements Broker {
  readonly kind = 'redis' as const;
  readonly #config: RedisBrokerConfig;
  readonly #keys: RedisKeys;
  readonly #deadLetterNames: Map<string, string>;
  readonly #logger: BrokerLogger;
  readonly #now: () => number;
  readonly #held = new WeakMap<Delivery, Held>();
  readonly #bound = new Set<string>();
  #client: ScriptedRedis | undefined;
  #blocking: ScriptedRedis | undefined;
  #lastError: () => Error | undefined = () => undefined;
  #ready: Promise<void> | undefined;
  #closed = false;
  // Broker secret (`config.secretArn`, see broker-secret.ts): the URL with the secret's
  // credentials, resolved by the first operation; a refusal of them (a rotated password) asks the
  // next operation to read the secret anew and reconnect.
  #url: string | undefined;
  #credentialsRefused = false;
  #resolving: Promise<void> | undefined;
  // The token of a restore mutex we may still hold: set before taking it, cleared once it is
  // released. A pass cut short by a lost connection (a Redis restart with persistence) cannot
  // release it, and without this our own next pass would wait out RESTORE_MUTEX_TTL_MS.
  #mutexToken: string | undefined;
  #restoring = false;

  constructor(options: RedisBrokerOptions) {
    this.#config = options.config;
    this.#keys = new RedisKeys(options.config.keyPrefix);
    this.#deadLetterNames = new Map(
      (options.queues ?? []).map((queue) => [queue.name, queue.deadLetterQueue]),
    );
    this.#logger = options.logger ?? console;
    this.#now = options.now ?? Date.now;
  }

  /** Key names this broker uses (for tests and the CLI). */
  get keys(): RedisKeys {
    return this.#keys;
  }

  /** The dead-letter queue name of `queue`. */
  deadLetterQueue(queue: string): string {
    return this.#deadLetterNames.get(queue) ?? `${queue}.dlq`;
  }

  async publish(messages: readonly TaskMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const redis = await this.#connection(`publish to ${messages[0]?.routingKey}`);
    const transaction = redis.multi();
    const now = new Date(this.#now());
    const binding: string[] = [];
    const lists = new Map<string, string[]>();
    for (const message of messages) {
      const queue = message.routingKey;
      // Once per queue and batch: a batch of n messages to one new queue needs one SADD, not n.
      if (!this.#bound.has(queue) && !binding.includes(queue)) {
        const { key, member } = this.#keys.binding(queue);
        transaction.sadd(key, member);
        binding.push(queue);
      }
      const encoded = encodeRedisMessage(message, { now });
      const list = this.#keys.prefixed(encoded.key);
      const envelopes = lists.get(list);
      if (envelopes) envelopes.push(encoded.envelope);
      else lists.set(list, [encoded.envelope]);
    }
    // One LPUSH per list and 1000 envelopes, in publishing order (consumed in that order, as n
    // single LPUSHes would be): a batch costs the client a third of the time (bench/publish.ts).
    for (const [list, envelopes] of lists) {
      for (let start = 0; start < envelopes.length; start += LPUSH_CHUNK) {
        transaction.lpush(list, ...envelopes.slice(start, start + LPUSH_CHUNK));
      }
    }
    await this.#exec(transaction, `publish ${messages.length} message(s)`);
    for (const queue of binding) this.#bound.add(queue);
  }

  async receive(queue: string, options: ReceiveOptions): Promise<Delivery[]> {
    const redis = await this.#connection(`receive from ${queue}`);
    // Waiting is measured on the real clock: an injected clock (a test's frozen `now`) only dates
    // records, and would otherwise keep an empty receive waiting forever.
    const deadline = performance.now() + options.waitMs;
    let deliveries = await this.#receiveNow(redis, queue, options.max);
    for (;;) {
      const remaining = deadline - performance.now();
      if (deliveries.length > 0 || remaining <= 0 || options.signal?.aborted || this.#closed) {
        return deliveries;
      }
      deliveries = await this.#waitAndReceive(
        queue,
        Math.min(remaining, MAX_BLOCK_MS),
        options.max,
      );
    }
  }

  async #receiveNow(redis: ScriptedRedis, queue: string, max: number): Promise<Delivery[]> {
    let reply: string[];
    try {
      reply = await this.#sendReceive(redis, queue, max);
    } catch (error) {
      throw redisFailure(this.#config.url, `receive from ${queue}`, error, this.#lastError());
    }
    return this.#deliveriesOf(queue, reply);
  }

  /** Sends the atomic receive script (pop, and record as unacked) for up to `max` messages. */
  #sendReceive(redis: ScriptedRedis, queue: string, max: number): Promise<string[]> {
    const lists = this.#keys.queueLists(queue);
    const deadLetter = this.#keys.deadLetter(this.deadLetterQueue(queue));
    const now = this.#now();
    return redis.scReceive(
      3 + lists.length,
      this.#keys.unacked,
      this.#keys.unackedIndex,
      deadLetter,
      ...lists,
      now / 1000,
      max,
      queue,
      new Date(now).toISOString(),
    );
  }

  /**
   * Blocks until the queue's step-0 list has an element or `ms` pass, then receives. BLMOVE from
   * the list's tail to its own tail only waits (the list stays as it was); the receive script is
   * sent right behind it on the same connection, so Redis runs it the moment BLMOVE returns: a
   * message arriving at an idle worker costs one round trip, not two (bench/latency.ts). The
   * script's clock reading is taken when it is sent, at most `ms` early: a hold's visibility
   * timeout may start that much sooner.
   */
  async #waitAndReceive(queue: string, ms: number, max: number): Promise<Delivery[]> {
    this.#blocking ??= this.#connect('blocking');
    const [list] = this.#keys.queueLists(queue);
    const [waited, received] = await Promise.allSettled([
      this.#blocking.blmove(list as string, list as string, 'RIGHT', 'RIGHT', ms / 1000),
      this.#sendReceive(this.#blocking, queue, max),
    ]);
    // What the script took is held whatever became of the wait: it must reach the caller.
    if (
      received.status === 'fulfilled' &&
      (received.value.length > 0 || waited.status === 'fulfilled')
    )
      return this.#deliveriesOf(queue, received.value);
    if (this.#closed) return [];
    const [action, error] =
      waited.status === 'rejected'
        ? [`wait on ${queue}`, waited.reason]
        : [`receive from ${queue}`, (received as PromiseRejectedResult).reason];
    throw redisFailure(this.#config.url, action, error, this.#lastError());
  }

  /** The deliveries of a receive script's reply, each recorded as held by this broker. */
  #deliveriesOf(queue: string, reply: readonly string[]): Delivery[] {
    const deliveries: Delivery[] = [];
    for (let index = 0; index + 2 < reply.length; index += 3) {
      const [kind, tag, raw] = [reply[index], reply[index + 1], reply[index + 2]] as string[];
      if (kind === 'd') {
        this.#logger.warn(`dead-lettered a message from ${queue} on receipt: ${raw}`);
        continue;
      }
      const result = decodeRedisMessage(raw as string);
      const delivery: Delivery = {
        queue,
        result,
        redelivered: result.ok ? result.message.redelivered : false,
      };
      this.#held.set(delivery, { tag: tag as string, raw: raw as string });
      deliveries.push(delivery);
    }
    return deliveries;
  }

  async settle(items: readonly SettleItem[]): Promise<void> {
    if (items.length === 0) return;
    const redis = await this.#connection('settle');
    const transaction = redis.multi();
    const now = this.#now();
    const settled = new Set<Delivery>();
    const tags: string[] = [];
    for (const { delivery, settlement } of items) {
      const held = this.#held.get(delivery);
      // `#held` forgets a delivery only after the transaction: a repeat within this call counts too.
      if (!held || settled.has(delivery))
        throw new Error(`delivery from ${delivery.queue} was already settled or is not ours`);
      settled.add(delivery);
      tags.push(held.tag);
      if (settlement.kind === 'retry-later') {
        this.#park(transaction, delivery.queue, settlement.message, settlement.dueAt, now);
      } else if (settlement.kind === 'dead-letter') {
        const record = this.#deadLetterRecord(delivery.queue, settlement.reason, held.raw, now);
        transaction.lpush(this.#keys.deadLetter(this.deadLetterQueue(delivery.queue)), record);
      }
    }
    // One variadic ZREM and HDEL for the whole batch: two commands instead of two per message.
    transaction.zrem(this.#keys.unackedIndex, ...tags);
    transaction.hdel(this.#keys.unacked, ...tags);
    await this.#exec(transaction, `settle ${items.length} message(s)`);
    for (const delivery of settled) this.#held.delete(delivery);
  }

  /** Queues `message` to run at `dueAt`: in the delay zset, or straight in its list if due. */
  #park(
    transaction: ReturnType<ScriptedRedis['multi']>,
    queue: string,
    message: TaskMessage,
    dueAt: Date,
    now: number,
  ): void {
    const routed = { ...message, exchange: '', routingKey: queue };
    const encoded = encodeRedisMessage(routed, { now: new Date(now) });
    if (dueAt.getTime() <= now) {
      transaction.lpush(this.#keys.prefixed(encoded.key), encoded.envelope);
      return;
    }
    const step =
      encoded.key === queue ? '0' : encoded.key.slice(queue.length + KOMBU_SEPARATOR.length);
    transaction.zadd(this.#keys.delayed(queue), dueAt.getTime(), `${step}${encoded.envelope}`);
  }

  #deadLetterRecord(queue: string, reason: DeadLetterReason, raw: string, now: number): string {
    return JSON.stringify({ ...reason, queue, at: new Date(now).toISOString(), raw });
  }

  async deadLetter(items: readonly DeadLetterItem[]): Promise<void> {
    if (items.length === 0) return;
    const redis = await this.#connection('dead-letter');
    const transaction = redis.multi();
    const now = this.#now();
    for (const { queue, raw, reason } of items) {
      const record = this.#deadLetterRecord(queue, reason, encodeRedisEnvelopeFromRaw(raw), now);
      transaction.lpush(this.#keys.deadLetter(this.deadLetterQueue(queue)), record);
    }
    await this.#exec(transaction, `dead-letter ${items.length} message(s)`);
  }

  async promoteDue(queue: string, limit = 1000): Promise<number> {
    const redis = await this.#connection(`promote delayed messages of ${queue}`);
    try {
      return await redis.scPromote(
        5,
        this.#keys.delayed(queue),
        ...this.#keys.queueLists(queue),
        this.#now(),
        limit,
      );
    } catch (error) {
      throw redisFailure(this.#config.url, `promote ${queue}`, error, this.#lastError());
    }
  }

  async restoreStale(): Promise<number> {
    // One pass at a time per broker: a second would release the first's mutex (#mutexToken).
    if (this.#restoring) return 0;
    this.#restoring = true;
    try {
      return await this.#restorePass();
    } finally {
      this.#restoring = false;
    }
  }

  async #restorePass(): Promise<number> {
    const redis = await this.#connection('restore stale messages');
    const mutex = this.#keys.unackedMutex;
    if (this.#mutexToken !== undefined) {
      // Deletes the mutex only if it still holds our token: never another worker's.
      await redis.scReleaseMutex(1, mutex, this.#mutexToken).catch((error: unknown) => {
        throw redisFailure(this.#config.url, 'restore stale messages', error, this.#lastError());
      });
      this.#mutexToken = undefined;
    }
    const token = randomUUID();
    this.#mutexToken = token;
    const acquired = await redis
      .set(mutex, token, 'PX', RESTORE_MUTEX_TTL_MS, 'NX')
      .catch((error: unknown) => {
        throw redisFailure(this.#config.url, 'restore stale messages', error, this.#lastError());
      });
    if (acquired !== 'OK') {
      this.#mutexToken = undefined;
      return 0;
    }
    let restored = 0;
    try {
      const ceiling = this.#now() / 1000 - this.#config.visibilityTimeout;
      const tags = await redis.zrevrangebyscore(
        this.#keys.unackedIndex,
        ceiling,
        0,
        'LIMIT',
        0,
        RESTORE_BATCH,
      );
      for (const tag of tags) restored += await this.#restoreOne(redis, tag);
    } catch (error) {
      throw redisFailure(this.#config.url, 'restore stale messages', error, this.#lastError());
    } finally {
      await redis.scReleaseMutex(1, mutex, token).then(
        () => {
          if (this.#mutexToken === token) this.#mutexToken = undefined;
        },
        () => {
          // Kept in #mutexToken: our next pass releases it first; else it lapses after 30 s.
        },
      );
    }
    return restored;
  }

  async #restoreOne(redis: ScriptedRedis, tag: string): Promise<number> {
    const entry = await redis.hget(this.#keys.unacked, tag);
    if (entry === null) {
      // Index entry without a hash entry: acked between our two reads. Nothing to restore.
      await redis.zrem(this.#keys.unackedIndex, tag);
      return 0;
    }
    const parsed = decodeUnackedEntry(entry);
    const envelope = parsed ? (JSON.parse(parsed.envelope) as Record<string, unknown>) : null;
    if (!parsed || !envelope) {
      const reason = deadLetterReason(
        { task: null, id: null, retries: null },
        'invalidMessage',
        'unacked entry is not [envelope, exchange, routing_key]',
      );
      const record = this.#deadLetterRecord('unacked', reason, entry, this.#now());
      const list = this.#keys.deadLetter('unacked.dlq');
      return redis.scDeadLetterOne(
        3,
        this.#keys.unacked,
        this.#keys.unackedIndex,
        list,
        tag,
        entry,
        record,
      );
    }
    // kombu's _do_restore_message: flag the message redelivered, in headers and delivery_info.
    const properties = isPlainObject(envelope.properties) ? envelope.properties : {};
    if (isPlainObject(envelope.headers)) envelope.headers.redelivered = true;
    if (isPlainObject(properties.delivery_info)) properties.delivery_info.redelivered = true;
    const queue = await this.#lookupQueue(redis, parsed.exchange, parsed.routingKey);
    const priority = typeof properties.priority === 'number' ? properties.priority : 0;
    const list = this.#keys.prefixed(redisPriorityKey(queue, priority));
    return redis.scRestoreOne(
      3,
      this.#keys.unacked,
      this.#keys.unackedIndex,
      list,
      tag,
      entry,
      JSON.stringify(envelope),
    );
  }

  /** kombu's `_lookup` for direct routing: the default exchange routes by queue name. */
  async #lookupQueue(redis: ScriptedRedis, exchange: string, routingKey: string): Promise<string> {
    if (exchange === '') return routingKey;
    const members = await redis.smembers(this.#keys.prefixed(`_kombu.binding.${exchange}`));
    for (const member of members) {
      const [key, , queue] = member.split(KOMBU_SEPARATOR);
      if (key === routingKey && queue) return queue;
    }
    return routingKey;
  }

  async stats(queue: string): Promise<QueueStats> {
    const redis = await this.#connection(`inspect ${queue}`);
    const pipeline = redis.pipeline();
    for (const list of this.#keys.queueLists(queue)) pipeline.llen(list);
    pipeline.zcard(this.#keys.delayed(queue));
    pipeline.llen(this.#keys.deadLetter(this.deadLetterQueue(queue)));
    const replies = await this.#exec(pipeline, `inspect ${queue}`);
    const counts = replies.map((reply) => Number(reply));
    const ready = counts.slice(0, 4).reduce((sum, count) => sum + count, 0);
    return {
      queue,
      ready,
      unacked: await this.#countUnacked(redis, queue),
      delayed: counts[4] ?? 0,
      deadLettered: counts[5] ?? 0,
    };
  }

  /** Held messages of one queue: the `unacked` hash is shared by all queues, so scan it. */
  async #countUnacked(redis: ScriptedRedis, queue: string): Promise<number> {
    let count = 0;
    let cursor = '0';
    do {
      const [next, flat] = await redis
        .hscan(this.#keys.unacked, cursor, 'COUNT', 500)
        .catch((error: unknown) => {
          throw redisFailure(this.#config.url, `inspect ${queue}`, error, this.#lastError());
        });
      cursor = next;
      for (let index = 1; index < flat.length; index += 2) {
        const entry = decodeUnackedEntry(flat[index] as string);
        if (entry?.routingKey === queue) count++;
      }
    } while (cursor !== '0');
    return count;
  }

  async deadLetters(queue: string, limit: number): Promise<DeadLetterEntry[]> {
    // LRANGE 0 -1 would mean "all": a limit of 0 asks for none.
    if (limit <= 0) return [];
    const redis = await this.#connection(`read dead letters of ${queue}`);
    const key = this.#keys.deadLetter(this.deadLetterQueue(queue));
    const records = await redis.lrange(key, 0, limit - 1).catch((error: unknown) => {
      throw redisFailure(
        this.#config.url,
        `read dead letters of ${queue}`,
        error,
        this.#lastError(),
      );
    });
    return records.map((record) => JSON.parse(record) as DeadLetterEntry);
  }

  async replayDeadLetters(queue: string, filter: DeadLetterFilter = {}): Promise<number> {
    const redis = await this.#connection(`replay dead letters of ${queue}`);
    const key = this.#keys.deadLetter(this.deadLetterQueue(queue));
    const { key: bindingKey, member } = this.#keys.binding(queue);
    let replayed = 0;
    try {
      await redis.sadd(bindingKey, member);
      // The list is newest first: replay the oldest first, as they died.
      for (const record of (await redis.lrange(key, 0, -1)).reverse()) {
        if (filter.limit !== undefined && replayed >= filter.limit) break;
        const entry = parseDeadLetter(record);
        if (!entry || (filter.task !== undefined && entry.task !== filter.task)) continue;
        const decoded = decodeRedisMessage(entry.raw);
        if (!decoded.ok) continue;
        const message = replayMessage({ ...decoded.message, exchange: '', routingKey: queue });
        const encoded = encodeRedisMessage(message, { now: new Date(this.#now()) });
        replayed += await redis.scReplayOne(
          2,
          key,
          this.#keys.prefixed(encoded.key),
          record,
          encoded.envelope,
        );
      }
    } catch (error) {
      throw redisFailure(
        this.#config.url,
        `replay dead letters of ${queue}`,
        error,
        this.#lastError(),
      );
    }
    return replayed;
  }

  async purgeDeadLetters(queue: string, filter: DeadLetterFilter = {}): Promise<number> {
    const redis = await this.#connection(`purge dead letters of ${queue}`);
    const key = this.#keys.deadLetter(this.deadLetterQueue(queue));
    try {
      if (filter.task === undefined && filter.limit === undefined) {
        const [[, count]] = (await redis.multi().llen(key).del(key).exec()) as [
          [Error | null, number],
        ];
        return count;
      }
      let purged = 0;
      for (const record of (await redis.lrange(key, 0, -1)).reverse()) {
        if (filter.limit !== undefined && purged >= filter.limit) break;
        const entry = parseDeadLetter(record);
        if (filter.task !== undefined && entry?.task !== filter.task) continue;
        purged += await redis.lrem(key, 1, record);
      }
      return purged;
    } catch (error) {
      throw redisFailure(
        this.#config.url,
        `purge dead letters of ${queue}`,
        error,
        this.#lastError(),
      );
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#blocking?.disconnect();
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      await client.quit().catch(() => {
        // Already disconnected: nothing left to close.
        client.disconnect();
      });
    }
  }

  #connect(role: string): ScriptedRedis {
    const { client, lastError } = connectRedis({
      url: this.#url ?? this.#config.url,
      connectTimeoutMs: this.#config.connectTimeoutMs,
      connectionName: `serverless-celery:${role}`,
      ...(this.#config.tls ? { tls: this.#config.tls } : {}),
    });
    if (role === 'main') this.#lastError = lastError;
    if (this.#config.secretArn) {
      client.on('error', (error: Error) => {
        if (isRedisAuthFailure(error)) this.#credentialsRefused = true;
      });
    }
    return client;
  }

  /** The main connection, created on first use; warns once if Redis may evict broker keys. */
  async #connection(action: string, renewed = false): Promise<ScriptedRedis> {
    if (this.#closed) throw new Error('the Redis broker is closed');
    if (this.#config.secretArn && (this.#url === undefined || this.#credentialsRefused)) {
      try {
        await this.#resolveUrl();
      } catch (error) {
        throw redisFailure(this.#config.url, action, error);
      }
      if (this.#closed) throw new Error('the Redis broker is closed');
    }
    if (!this.#client) {
      await loadRedisClient();
      this.#client ??= this.#connect('main');
    }
    const client = this.#client;
    this.#ready ??= this.#checkEvictionPolicy(client).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    try {
      await this.#ready;
    } catch (error) {
      // Refused at connect (a rotated password): read the secret anew and connect once more.
      const refused = isRedisAuthFailure(error) || isRedisAuthFailure(this.#lastError());
      if (this.#config.secretArn && refused && !renewed) {
        this.#credentialsRefused = true;
        return this.#connection(action, true);
      }
      throw redisFailure(this.#config.url, action, error, this.#lastError());
    }
    return client;
  }

  /**
   * Reads the broker secret (anew, bypassing the cache, after a refusal) into `#url`; when the
   * credentials changed, drops the clients that use the old ones, and the caller makes new ones.
   * Calls made meanwhile wait for the same read.
   */
  #resolveUrl(): Promise<void> {
    this.#resolving ??= (async () => {
      const refresh = this.#credentialsRefused;
      this.#credentialsRefused = false;
      try {
        const url = await brokerUrlOf(this.#config, refresh);
        if (url === this.#url) return;
        this.#url = url;
      } catch (error) {
        this.#credentialsRefused = refresh;
        throw error;
      }
      // In-flight commands on them fail, as they were failing anyway: Redis refused the old credentials.
      this.#client?.disconnect();
      this.#blocking?.disconnect();
      this.#client = undefined;
      this.#blocking = undefined;
      this.#ready = undefined;
    })().finally(() => {
      this.#resolving = undefined;
    });
    return this.#resolving;
  }

  async #checkEvictionPolicy(client: ScriptedRedis): Promise<void> {
    // INFO works where CONFIG GET is disabled (ElastiCache).
    const info = await client.info('memory');
    const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
    if (policy && policy !== 'noeviction') {
      this.#logger.warn(
        `Redis maxmemory-policy is ${policy}: under memory pressure Redis may evict queued tasks. Set it to noeviction.`,
      );
    }
  }

  async #exec(
    batch: { exec(): Promise<[Error | null, unknown][] | null> },
    action: string,
  ): Promise<unknown[]> {
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await batch.exec();
    } catch (error) {
      throw redisFailure(this.#config.url, action, error, this.#lastError());
    }
    if (!replies) throw redisFailure(this.#config.url, action, new Error('transaction aborted'));
    const failed = replies.find(([error]) => error);
    if (failed?.[0]) throw redisFailure(this.#config.url, action, failed[0]);
    return replies.map(([, value]) => value);
  }
}
