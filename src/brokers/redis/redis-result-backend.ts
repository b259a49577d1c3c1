/**
 * Celery's Redis result backend (`celery/backends/redis.py`), readable and writable by Python
 * peers: `celery-task-meta-<id>` set with `SETEX` and `PUBLISH`ed on a channel of the same name in
 * one MULTI, so a waiting `AsyncResult.get()` on either side wakes at once; chord parts counted
 * in `celery-taskset-meta-<group>.j/.t/.s`. One lazily created connection for commands, and one
 * per waiting `waitFor` (a subscribed connection can run nothing else).
 */
import type { Redis } from 'ioredis';
import {
  parseResultBackendConfig,
  type ResultBackendConfig,
  type ResultBackendInput,
} from '../../config/result-backend-config.js';
import { AsyncResult } from '../../core/async-result.js';
import type { ChordSize } from '../../core/canvas.js';
import type { TaskMessage } from '../../core/message.js';
import {
  type OutcomeRecord,
  parseResultMeta,
  pendingMeta,
  READY_STATES,
  type ResultBackend,
  type ResultMeta,
  ResultTimeoutError,
  resultMetaJson,
  taskMetaKey,
  tasksetKey,
} from '../../core/result-backend.js';
import { chordMember, completeChord, decideChord } from '../../core/result-chord.js';
import { metaForRecord } from '../../core/result-meta.js';
import { DEFAULT_QUEUE } from '../../core/task.js';
import { loadRedisClient } from './redis-client.js';

/** Options of {@link RedisResultBackend}. */
export interface RedisResultBackendOptions {
  /** Queue of a chord body or errback without its own: `routeFor(registry)`. @defaultValue `celery` */
  readonly route?: (task: string) => string;
}

type Publish = (messages: readonly TaskMessage[]) => Promise<void>;

/** A {@link ResultBackend} on Redis, in Celery's format. */
export class RedisResultBackend implements ResultBackend {
  readonly config: ResultBackendConfig;
  readonly #route: (task: string) => string;
  #redis: Redis | undefined;

  constructor(input: ResultBackendInput, options: RedisResultBackendOptions = {}) {
    this.config = parseResultBackendConfig(input);
    this.#route = options.route ?? (() => DEFAULT_QUEUE);
  }

  async #client(): Promise<Redis> {
    if (!this.#redis) {
      const RedisClient = await loadRedisClient();
      // Another call may have created one while ioredis was loading.
      if (this.#redis) return this.#redis;
      const created = new RedisClient(this.config.url, {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
      });
      // The failing command rejects with the reason; without a listener ioredis would also
      // report it as an unhandled 'error' event.
      created.on('error', () => {});
      this.#redis = created;
    }
    return this.#redis;
  }

  /** A result handle on `id` read from this backend. */
  asyncResult(id: string): AsyncResult {
    return new AsyncResult(id, this);
  }

  async record(items: readonly OutcomeRecord[], publish: Publish): Promise<void> {
    for (const item of items) {
      const meta = metaForRecord(item);
      if (!meta) continue;
      if (item.store) await this.storeMeta(meta);
      if (meta.status === 'FAILURE') await this.#failChain(item.message, meta);
      if (READY_STATES.has(meta.status)) await this.#chordPart(item.message, meta, publish);
    }
  }

  /** Stores a meta unless a SUCCESS is stored already (Celery's `_store_result`). */
  async storeMeta(meta: ResultMeta): Promise<void> {
    const redis = await this.#client();
    const key = taskMetaKey(meta.task_id, this.config.keyPrefix);
    const stored = await redis.get(key);
    if (stored !== null && parseResultMeta(stored)?.status === 'SUCCESS') return;
    const text = resultMetaJson(meta);
    await exec(redis.multi().setex(key, this.config.expiresSeconds, text).publish(key, text));
  }

  /**
   * The rest of a failed task's chain fails with it (`mark_as_failure`), so a waiter on the
   * chain's last step learns at once.
   */
  async #failChain(message: TaskMessage, meta: ResultMeta): Promise<void> {
    for (const step of message.embed.chain ?? []) {
      const options =
        typeof step === 'object' && step !== null && !Array.isArray(step) ? step.options : null;
      const id =
        options && typeof options === 'object' && !Array.isArray(options) ? options.task_id : null;
      if (typeof id === 'string') {
        await this.storeMeta({ ...meta, task_id: id, children: [] });
      }
    }
  }

  async #chordPart(message: TaskMessage, meta: ResultMeta, publish: Publish): Promise<void> {
    if (message.embed.chord == null || !message.group) return;
    const redis = await this.#client();
    const base = tasksetKey(message.group, this.config.keyPrefix);
    const [j, t, s] = [`${base}.j`, `${base}.t`, `${base}.s`];
    const ttl = this.config.expiresSeconds;
    const replies = await exec(
      redis
        .multi()
        .zadd(j, String(message.groupIndex ?? '+inf'), chordMember(meta))
        .zcount(j, '-inf', '+inf')
        .get(t)
        .get(s)
        .expire(j, ttl)
        .expire(t, ttl)
        .expire(s, ttl),
    );
    const [, count, diff, size] = replies as [unknown, number, string | null, string | null];
    // No size: a chord we cannot finish, or one another worker finished already.
    if (size === null) return;
    if (Number(count) !== Number(size) + Number(diff ?? 0)) return;
    const members = await redis.zrange(j, '0', '-1');
    const completion = completeChord(message, decideChord(members), { route: this.#route });
    await publish(completion.publish);
    if (completion.failure) {
      await this.storeMeta(completion.failure);
    } else {
      await redis.del(j, t, s);
    }
  }

  async setChordSize(sizes: readonly ChordSize[]): Promise<void> {
    if (sizes.length === 0) return;
    const redis = await this.#client();
    const multi = redis.multi();
    for (const { groupId, size } of sizes) {
      const key = `${tasksetKey(groupId, this.config.keyPrefix)}.s`;
      multi.setex(key, this.config.expiresSeconds, String(size)).publish(key, String(size));
    }
    await exec(multi);
  }

  async getMeta(id: string): Promise<ResultMeta> {
    const redis = await this.#client();
    const text = await redis.get(taskMetaKey(id, this.config.keyPrefix));
    return (text !== null ? parseResultMeta(text) : null) ?? pendingMeta(id);
  }

  async waitFor(
    id: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ResultMeta> {
    const key = taskMetaKey(id, this.config.keyPrefix);
    const subscriber = (await this.#client()).duplicate();
    subscriber.on('error', () => {});
    try {
      // Subscribe first, then read: a result stored in between is seen by one or the other.
      const woken = new Promise<ResultMeta>((resolve) => {
        subscriber.on('message', (channel: string, text: string) => {
          const meta = channel === key ? parseResultMeta(text) : null;
          if (meta && READY_STATES.has(meta.status)) resolve(meta);
        });
      });
      await subscriber.subscribe(key);
      const now = await this.getMeta(id);
      if (READY_STATES.has(now.status)) return now;
      return await raceLimits(woken, id, options);
    } finally {
      subscriber.disconnect();
    }
  }

  async close(): Promise<void> {
    const redis = this.#redis;
    this.#redis = undefined;
    await redis?.quit().catch(() => redis.disconnect());
  }
}

/** Creates a {@link RedisResultBackend}; nothing connects until it is used. */
export function redisResultBackend(
  input: ResultBackendInput,
  options: RedisResultBackendOptions = {},
): RedisResultBackend {
  return new RedisResultBackend(input, options);
}

async function exec(multi: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const replies = await multi.exec();
  if (!replies) throw new Error('result backend: MULTI was aborted');
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

function raceLimits(
  woken: Promise<ResultMeta>,
  id: string,
  options: { timeoutMs?: number; signal?: AbortSignal },
): Promise<ResultMeta> {
  const { timeoutMs, signal } = options;
  return new Promise<ResultMeta>((resolve, reject) => {
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => reject(new ResultTimeoutError(id, timeoutMs)), timeoutMs);
    const onAbort = () => reject(signal?.reason ?? new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    woken.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  });
}
