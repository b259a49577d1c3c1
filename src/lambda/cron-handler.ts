/**
 * Cron: a task declared with `cron` gets a schedule trigger, and this function publishes the
 * task's message on each tick, as Celery beat would (a plain task message whose `expires` is the
 * interval). Overlapping triggers for one tick publish once: a Redis `SET NX EX` key per task and
 * tick, as Sentry's scheduler does, or on a RabbitMQ deployment a one-message queue per task and
 * tick (`rabbitMqOnceStore`), so that it needs no Redis.
 */
import middy from '@middy/core';
import { onceStoreAt } from '../brokers/once-store-at.js';
import { redisOnceStore } from '../brokers/redis/redis-once-store.js';
import { brokerKindOf, DEFAULT_BROKER_URL } from '../config/broker-config.js';
import { InvalidConfigError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import { cronTickKey, type Schedule, scheduleInterval } from '../core/schedule.js';
import type { LambdaRuntime } from './runtime.js';

/** A scheduled event: EventBridge's has `time`; anything else ticks at the current minute. */
export interface CronEvent {
  readonly time?: string;
}

/** What a tick did. */
export type CronResult =
  | { readonly published: true; readonly id: string; readonly tick: string }
  | {
      readonly published: false;
      readonly tick: string;
      readonly reason: 'already published for this tick';
    };

/** Claims a tick once across overlapping triggers. */
export interface TickLock {
  /** True for the first caller of `key` within `ttlSeconds`. */
  claim(key: string, ttlSeconds: number): Promise<boolean>;
  /** Gives a claim back, so that a retried trigger may publish the tick after all. */
  release?(key: string): Promise<void>;
  /** Closes the lock's connection (a long-lived process that stops); Lambda keeps it. */
  close?(): Promise<void>;
}

/** A {@link TickLock} on Redis (`SET key 1 NX EX ttl`). */
export function redisTickLock(url: string): TickLock {
  return redisOnceStore(url);
}

/**
 * The {@link TickLock} at `url`: Redis (`redis://`, `rediss://`) or RabbitMQ (`amqp://`,
 * `amqps://`), as {@link onceStoreAt} picks it. A build for one broker (`SERVERLESS_CELERY_BROKER`)
 * carries only that broker's client; a lock on the other needs {@link redisTickLock} or
 * `rabbitMqOnceStore` passed as `lock`.
 */
export function tickLockAt(url: string): TickLock {
  return onceStoreAt(url, {
    subject: 'cron tick lock',
    noun: 'a lock',
    advice: 'pass one as `lock` to createCronHandler',
  });
}

export { cronTickKey, scheduleInterval } from '../core/schedule.js';

/** Options of {@link createCronHandler}. */
export interface CronHandlerOptions {
  /**
   * @defaultValue {@link tickLockAt} `CRON_LOCK_URL`, else `BROKER_URL` when it is Redis or
   * RabbitMQ (the broker holds its own locks), else the local Redis
   */
  readonly lock?: TickLock;
}

/** Builds the handler that publishes cron task `task` on each tick. */
export function createCronHandler(
  runtime: LambdaRuntime,
  task: string,
  options: CronHandlerOptions = {},
) {
  const definition = cronTask(runtime.registry, task);
  const schedule = definition.schedule as Schedule;
  const lock = options.lock ?? tickLockAt(defaultLockUrl());
  return middy(async (event: CronEvent): Promise<CronResult> => {
    const scheduled = event?.time ? new Date(event.time) : new Date();
    const tick = new Date(Math.floor(scheduled.getTime() / 60_000) * 60_000).toISOString();
    const interval = scheduleInterval(schedule, new Date(tick));
    const key = cronTickKey(definition.name, tick);
    if (!(await lock.claim(key, interval))) {
      return { published: false, tick, reason: 'already published for this tick' };
    }
    const message = definition.createMessage({ expires: definition.options.expires ?? interval });
    try {
      await runtime.broker().publish([message]);
    } catch (error) {
      // The trigger is retried on failure: a claim kept here would make the retry skip the tick.
      await lock.release?.(key).catch(() => {
        // The lock is unreachable too: its key expires after one interval.
      });
      throw error;
    }
    return { published: true, id: message.id, tick };
  });
}

function cronTask(registry: Registry, task: string) {
  const lookup = registry.lookup(task);
  if (lookup.kind === 'unregistered') throw lookup.error;
  if (!lookup.task.schedule) {
    throw new InvalidConfigError(`task ${task}`, [
      { path: 'cron', message: 'the task has no cron schedule' },
    ]);
  }
  return lookup.task;
}

function defaultLockUrl(): string {
  if (process.env.CRON_LOCK_URL) return process.env.CRON_LOCK_URL;
  const broker = process.env.BROKER_URL;
  return broker && brokerKindOf(broker) ? broker : DEFAULT_BROKER_URL;
}
