/**
 * Celery's Redis result backend (`celery/backends/redis.py`), readable and writable by Python
 * peers: `celery-task-meta-<id>` set with `SETEX` and `PUBLISH`ed on a channel of the same name in
 * one MULTI, so a waiting `AsyncResult.get()` on either side wakes at once; chord parts counted
 * in `celery-taskset-meta-<group>.j/.t/.s`. One lazily created connection for commands, and one
 * subscribed connection shared by every waiting `waitFor` (result-subscriber.ts).
 */
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
  resultMetaJson,
  taskMetaKey,
  tasksetKey,
} from '../../core/result-backend.js';
import {
  type ChordPart,
  chainStepChordPart,
  chordMember,
  chordPartOf,
  completeChord,
  decideChord,
} from '../../core/result-chord.js';
import { chainStepMeta, metaForRecord, startedMeta } from '../../core/result-meta.js';
import { DEFAULT_QUEUE } from '../../core/task.js';
import {
  createRedisClient,
  duplicateRedisClient,
  loadRedisClient,
  type RedisClient,
} from './redis-client.js';
import { ResultSubscriber, type WaitLimits } from './result-subscriber.js';

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
  #redis: RedisClient | undefined;
  readonly #subscriber = new ResultSubscriber(async () =>
    duplicateRedisClient(await this.#client()),
  );

  constructor(input: ResultBackendInput, options: RedisResultBackendOptions = {}) {
    this.config = parseResultBackendConfig(input);
    this.#route = options.route ?? (() => DEFAULT_QUEUE);
  }

  async #client(): Promise<RedisClient> {
    if (!this.#redis) {
      await loadRedisClient();
      // Another call may have created one while ioredis was loading.
      if (this.#redis) return this.#redis;
      const created = createRedisClient(this.config.url);
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
      // Celery's order (`mark_as_failure`): the task's own chord part, then its chain's steps.
      const part = READY_STATES.has(meta.status) ? chordPartOf(item.message) : null;
      if (part) await this.#chordPart(part, meta, publish);
      if (meta.status === 'FAILURE') await this.#failChain(item, meta, publish);
    }
  }

  /** Stores a meta unless a SUCCESS is stored already (Celery's `_store_result`). */
  async storeMeta(meta: ResultMeta): Promise<void> {
    const redis = await this.#client();
    const key = taskMetaKey(meta.task_id, this.config.keyPrefix);
    const stored = await redis.get(key);
    if (stored !== null && parseResultMeta(stored)?.status === 'SUCCESS') return;
    const text = resultMetaJson(meta, { extended: this.config.extended });
    await exec(redis.multi().setex(key, this.config.expiresSeconds, text).publish(key, text));
  }

  /**
   * The rest of a failed task's chain fails with it (`mark_as_failure`, 5.2 and 5.6): each step
   * with an id gets the failure (unless results are not stored, Celery's `store_result`) as
   * {@link chainStepMeta} rebuilds it from the step. A step that is a chord's header part is
   * counted as failed too, or a chord waiting on a chain whose early step failed would never
   * finish.
   */
  async #failChain(item: OutcomeRecord, meta: ResultMeta, publish: Publish): Promise<void> {
    for (const step of item.message.embed.chain ?? []) {
      const stepMeta = item.store ? chainStepMeta(meta, step) : null;
      if (stepMeta) await this.storeMeta(stepMeta);
      const part = chainStepChordPart(step, item.message);
      if (part) await this.#chordPart(part, meta, publish);
    }
  }

  /** Counts `part` with `meta`'s state and result (`on_chord_part_return`); the last one ends it. */
  async #chordPart(part: ChordPart, meta: ResultMeta, publish: Publish): Promise<void> {
    const redis = await this.#client();
    const base = tasksetKey(part.group, this.config.keyPrefix);
    const [j, t, s] = [`${base}.j`, `${base}.t`, `${base}.s`];
    const ttl = this.config.expiresSeconds;
    const replies = await exec(
      redis
        .multi()
        .zadd(j, String(part.groupIndex ?? '+inf'), chordMember({ ...meta, task_id: part.id }))
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
    const completion = completeChord(part, decideChord(members), { route: this.#route });
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

  /** Waits over the connection all waits share; the channel is the meta's key, as Celery's. */
  waitFor(id: string, options: WaitLimits = {}): Promise<ResultMeta> {
    const key = taskMetaKey(id, this.config.keyPrefix);
    return this.#subscriber.wait(id, key, () => this.getMeta(id), options);
  }

  /** Closes both connections, failing the waits in progress; a later call opens them again. */
  async close(): Promise<void> {
    const redis = this.#redis;
    this.#redis = undefined;
    await Promise.all([this.#subscriber.close(), redis?.quit().catch(() => redis.disconnect())]);
  }

  /**
   * Stores the STARTED state of messages about to run (Celery's `track_started`), in two round
   * trips for them all, and never over a ready state (a repeat of a message whose result is
   * stored): the run that follows stores its own. The worker awaits it before running them, so
   * their final states, stored after the run, always land last.
   */
  async markStarted(messages: readonly TaskMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const redis = await this.#client();
    const keys = messages.map((message) => taskMetaKey(message.id, this.config.keyPrefix));
    const stored = await redis.mget(...keys);
    const multi = redis.multi();
    let writes = 0;
    messages.forEach((message, index) => {
      const current = stored[index];
      const status = current == null ? null : parseResultMeta(current)?.status;
      if (status && READY_STATES.has(status)) return;
      const key = keys[index] as string;
      const text = resultMetaJson(startedMeta(message), { extended: this.config.extended });
      multi.setex(key, this.config.expiresSeconds, text).publish(key, text);
      writes++;
    });
    // A MULTI never executed sends nothing.
    if (writes > 0) await exec(multi);
  }
}

/** Creates a {@link RedisResultBackend}; nothing connects until it is used. */
export function redisResultBackend(
  input: ResultBackendInput,
  options: RedisResultBackendOptions = {},
): RedisResultBackend {
  return new RedisResultBackend(input, options);
}

async function exec(multi: ReturnType<RedisClient['multi']>): Promise<unknown[]> {
  const replies = await multi.exec();
  if (!replies) throw new Error('result backend: MULTI was aborted');
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
