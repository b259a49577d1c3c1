/**
 * The one subscribed connection a Redis result backend shares among all its waits. A subscribed
 * connection can run nothing else, so waiting used to cost a connection (and its handshake) per
 * `get()`: 200 concurrent waits held 200 connections. Here a channel (`celery-task-meta-<id>`)
 * is subscribed while someone waits on it: on its first waiter, and unsubscribed when its last
 * one leaves, woken, timed out or aborted.
 *
 * Not covered: a result published while the connection is down and reconnecting (ioredis
 * subscribes the channels again, but a message sent in between is lost) wakes no one; the waiter
 * then waits out its timeout, as it did with a connection of its own.
 */
import { CeleryError } from '../../core/errors.js';
import {
  parseResultMeta,
  READY_STATES,
  type ResultMeta,
  ResultTimeoutError,
} from '../../core/result-backend.js';

/** The slice of an ioredis connection a subscriber uses. */
export interface SubscriberConnection {
  on(event: 'message', listener: (channel: string, text: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  disconnect(): void;
}

/** How long one wait may last. */
export interface WaitLimits {
  /** @defaultValue wait for ever */
  readonly timeoutMs?: number;
  /** Stops waiting, rejecting with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** One wait in progress: woken by its channel or its own read, failed by either or by close(). */
class Waiter {
  wake: (meta: ResultMeta) => void = () => {};
  fail: (error: unknown) => void = () => {};
  readonly ready = new Promise<ResultMeta>((resolve, reject) => {
    this.wake = resolve;
    this.fail = reject;
  });
}

interface Channel {
  readonly waiters: Set<Waiter>;
  /** Settles with the SUBSCRIBE reply: reads must wait for it, or a result could slip between. */
  readonly subscribed: Promise<unknown>;
}

/** Waits on result channels over one shared subscribed connection, opened on the first wait. */
export class ResultSubscriber {
  readonly #connect: () => Promise<SubscriberConnection>;
  #connection: Promise<SubscriberConnection> | undefined;
  readonly #channels = new Map<string, Channel>();

  /** @param connect opens a new connection (a `duplicate()` of the command connection) */
  constructor(connect: () => Promise<SubscriberConnection>) {
    this.#connect = connect;
  }

  /** How many channels are subscribed: one per id someone waits for. */
  get channelCount(): number {
    return this.#channels.size;
  }

  /**
   * Resolves with the first ready meta published on `channel`, or with `read()`'s when it is ready
   * already. `read` runs once the channel is subscribed, so a result stored in between is seen by
   * one or the other.
   *
   * @throws ResultTimeoutError when nothing is ready within `timeoutMs` (subscribing included)
   * @throws the signal's reason when it aborts; a CeleryError when the subscriber is closed
   */
  async wait(
    id: string,
    channel: string,
    read: () => Promise<ResultMeta>,
    limits: WaitLimits = {},
  ): Promise<ResultMeta> {
    const waiter = new Waiter();
    this.#join(channel, waiter)
      // A waiter gone meanwhile (timed out, closed) reads nothing: after close() a read would
      // open the command connection again.
      .then(() => (this.#channels.get(channel)?.waiters.has(waiter) ? read() : null))
      .then((now) => {
        if (now && READY_STATES.has(now.status)) waiter.wake(now);
      }, waiter.fail);
    try {
      return await raceLimits(waiter.ready, id, limits);
    } finally {
      this.#leave(channel, waiter);
    }
  }

  /** Fails the waits in progress and closes the connection; a later wait opens a new one. */
  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    const waiters = [...this.#channels.values()].flatMap((channel) => [...channel.waiters]);
    this.#channels.clear();
    for (const waiter of waiters) {
      waiter.fail(new CeleryError('the result backend was closed while waiting for a result'));
    }
    // disconnect, not quit: nothing is left to flush, and a SUBSCRIBE still queued must not
    // hold the connection open.
    (await connection?.catch(() => undefined))?.disconnect();
  }

  /**
   * The shared connection. Every SUBSCRIBE and UNSUBSCRIBE is chained on this one promise, whose
   * reactions run in the order they were added, so Redis gets them in the order they were asked
   * for, even while the connection is still being opened: an UNSUBSCRIBE never overtakes the
   * SUBSCRIBE of a later waiter on the same channel.
   */
  #subscriber(): Promise<SubscriberConnection> {
    this.#connection ??= this.#connect().then((connection) => {
      // A failed SUBSCRIBE rejects its waiters with the reason; without a listener ioredis would
      // also report it as an unhandled 'error' event.
      connection.on('error', () => {});
      connection.on('message', (channel: string, text: string) => {
        const meta = parseResultMeta(text);
        if (!meta || !READY_STATES.has(meta.status)) return;
        for (const waiter of this.#channels.get(channel)?.waiters ?? []) waiter.wake(meta);
      });
      return connection;
    });
    return this.#connection;
  }

  #join(name: string, waiter: Waiter): Promise<unknown> {
    const channel = this.#channels.get(name);
    if (channel) {
      channel.waiters.add(waiter);
      return channel.subscribed;
    }
    const subscribed = this.#subscriber().then((connection) => connection.subscribe(name));
    this.#channels.set(name, { waiters: new Set([waiter]), subscribed });
    return subscribed;
  }

  #leave(name: string, waiter: Waiter): void {
    const channel = this.#channels.get(name);
    if (!channel?.waiters.delete(waiter) || channel.waiters.size > 0) return;
    this.#channels.delete(name);
    this.#subscriber()
      .then((connection) => connection.unsubscribe(name))
      .catch(() => {
        // Safe to drop: a connection that failed holds no subscription (ioredis subscribes again
        // only the channels still wanted), and a failed SUBSCRIBE already failed its waiters.
      });
  }
}

/** `ready`, or a rejection when the time is up or the signal aborts; cleans up either way. */
function raceLimits(
  ready: Promise<ResultMeta>,
  id: string,
  limits: WaitLimits,
): Promise<ResultMeta> {
  const { timeoutMs, signal } = limits;
  return new Promise<ResultMeta>((resolve, reject) => {
    const cleanUp = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      cleanUp();
      reject(signal?.reason ?? new Error('aborted'));
    };
    const onTimeout = () => {
      cleanUp();
      reject(new ResultTimeoutError(id, timeoutMs ?? 0));
    };
    const timer = timeoutMs === undefined ? undefined : setTimeout(onTimeout, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    ready.then(
      (meta) => {
        cleanUp();
        resolve(meta);
      },
      (error: unknown) => {
        cleanUp();
        reject(error);
      },
    );
  });
}
