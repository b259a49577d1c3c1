/**
 * The poller relay: scheduled drains hand over to each other instead of queueing behind a
 * reserved concurrency of 1. Each invocation serves one tick of its schedule and announces
 * itself by claiming that tick's key in a {@link OnceStore}; it drains until a later tick's
 * poller has announced itself (then the successor drains), or until its own hard stop.
 *
 * So the queues are drained without a pause at handovers (the successor takes before the
 * predecessor stops), a tick delivered twice drains once (the second claim fails), and a tick
 * lost or late costs nothing as long as the running poller has time left: it keeps draining until
 * some later tick's poller shows up. Pollers may overlap safely because a receive is atomic; the
 * overlap at a handover is kept to about `overlapMs` plus one check.
 *
 * Left out: a poller that dies after announcing itself is not noticed. Its predecessor has
 * handed over already, so the queues wait for the next tick (one interval at most), and what it
 * held waits for the visibility timeout.
 */
import type { OnceStore } from '../core/once-store.js';

/** The poller's schedule in serverless.yml: `rate(1 minute)`. */
export const POLLER_INTERVAL_MS = 60_000;

/**
 * The tick an invocation serves: its scheduled event's `time` (EventBridge's, the time the rule
 * was due, whenever it is delivered), else now (serverless-offline, a manual invoke), rounded
 * down to the interval. Two ticks one interval apart always fall in two slots.
 *
 * @param intervalMs - @defaultValue {@link POLLER_INTERVAL_MS}
 * @example scheduledTick({ time: '2026-12-05T01:23:00Z' }) // 2026-12-05T01:23:00.000Z
 */
export function scheduledTick(
  event: unknown,
  intervalMs: number = POLLER_INTERVAL_MS,
  now: number = Date.now(),
): Date {
  const time = (event as { time?: unknown } | null | undefined)?.time;
  const scheduled = typeof time === 'string' ? Date.parse(time) : Number.NaN;
  // A test event's made-up `time` must not stop the poller: it serves the current tick instead.
  const at = Number.isFinite(scheduled) ? scheduled : now;
  return new Date(Math.floor(at / intervalMs) * intervalMs);
}

/** Options of {@link createDrainRelay}. */
export interface DrainRelayOptions {
  /** Where pollers announce themselves: the broker, as `onceStoreAt(BROKER_URL)` picks it. */
  readonly store: OnceStore;
  /**
   * Which relay: pollers of one name hand over to each other. The function's name (it holds
   * the stage) keeps two pollers of different queues, or stages sharing a Redis, apart.
   */
  readonly name: string;
  /** The tick this poller serves ({@link scheduledTick}). */
  readonly tick: Date;
  /**
   * True once this poller must stop taking, successor or not: its timeout minus the task
   * functions' and a margin (`getRemainingTimeInMillis() <= stopTakingAtMs`).
   */
  readonly hardStop: () => boolean;
  /** The schedule's interval. @defaultValue {@link POLLER_INTERVAL_MS} */
  readonly intervalMs?: number;
  /** Least time to drain before handing over, ms. @defaultValue 0 */
  readonly minDrainMs?: number;
  /**
   * How long to keep taking after the successor is seen, ms: it may still be connecting to the
   * broker. @defaultValue 1000
   */
  readonly overlapMs?: number;
  /** Pause between two looks for a successor, ms. @defaultValue 1000 */
  readonly checkEveryMs?: number;
  /**
   * How many of the latest ticks to look at: 2 finds a successor delivered up to one interval
   * late (EventBridge retries a throttled tick for `maximumEventAge`, 60 s). @defaultValue 2
   */
  readonly lookback?: number;
  /** Clock, for tests. @defaultValue Date.now */
  readonly now?: () => number;
  /** Where a failed look for a successor is reported. @defaultValue console */
  readonly logger?: { warn(message: string): void };
}

/** Why a poller stopped taking. */
export type RelayStop = 'duplicate tick' | 'handed over' | 'hard stop' | 'stopped';

/** One poller's part in the relay. */
export interface DrainRelay {
  /**
   * Announces this poller. False when another poller serves the same tick already: then drain
   * nothing.
   *
   * @throws what the store throws: a poller that cannot announce itself does not drain
   */
  start(): Promise<boolean>;
  /** True while this poller should take messages: once false, false for good. */
  keepTaking(): boolean;
  /** Stops looking for a successor and taking; no timer is left behind. Safe to call twice. */
  stop(): void;
  /** Why this poller stopped taking, once it has (for its logs and result). */
  stoppedBecause(): RelayStop | undefined;
}

/** The store key of one tick of a relay. */
export function relayTickKey(name: string, tick: number): string {
  return `_sc.poller.${name}.${new Date(tick).toISOString()}`;
}

/**
 * Creates one poller's relay. Looks for a successor run in the background, one at a time, so
 * `keepTaking` never waits on the store.
 *
 * @example
 * const relay = createDrainRelay({ store, name: context.functionName, tick: scheduledTick(event),
 *   hardStop: () => context.getRemainingTimeInMillis() <= 60_000 });
 * if (await relay.start()) {
 *   try { await runWorker(broker, registry, { ...options, keepTaking: relay.keepTaking }); }
 *   finally { relay.stop(); }
 * }
 */
export function createDrainRelay(options: DrainRelayOptions): DrainRelay {
  const intervalMs = options.intervalMs ?? POLLER_INTERVAL_MS;
  const overlapMs = options.overlapMs ?? 1000;
  const checkEveryMs = options.checkEveryMs ?? 1000;
  const lookback = Math.max(1, options.lookback ?? 2);
  const now = options.now ?? Date.now;
  const logger = options.logger ?? console;
  const tick = Math.floor(options.tick.getTime() / intervalMs) * intervalMs;
  // Long enough for a duplicate delivery to find the key, and for a predecessor that looks
  // `lookback` ticks back to see it; a key outliving its use costs nothing.
  const ttlSeconds = ((lookback + 2) * intervalMs) / 1000;
  let state: 'new' | 'taking' | 'done' = 'new';
  let reason: RelayStop | undefined;
  let startedAt = 0;
  let successorSeenAt: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const finish = (why: RelayStop) => {
    reason ??= why;
    state = 'done';
    clearTimeout(timer);
    timer = undefined;
  };
  /** Whether a later tick than ours, among the latest `lookback`, has announced its poller. */
  const successorAnnounced = async () => {
    const latest = Math.floor(now() / intervalMs) * intervalMs;
    const later: number[] = [];
    for (let slot = latest; slot > tick && later.length < lookback; slot -= intervalMs) {
      later.push(slot);
    }
    const found = await Promise.all(
      later.map((slot) => options.store.exists(relayTickKey(options.name, slot))),
    );
    return found.includes(true);
  };
  const look = async () => {
    timer = undefined;
    try {
      if (await successorAnnounced()) successorSeenAt ??= now();
    } catch (error) {
      // Unseen, the successor is only waited for longer: this poller drains on, at worst until
      // its hard stop, alongside the successor.
      const reason = error instanceof Error ? error.message : String(error);
      logger.warn(`poller relay: cannot look for a successor: ${reason}`);
    }
    if (state === 'taking' && successorSeenAt === undefined) {
      timer = setTimeout(look, checkEveryMs);
      // A long-lived process (the CLI) must be free to exit while a look is pending.
      timer.unref?.();
    }
  };

  return {
    async start() {
      if (state !== 'new') return false;
      startedAt = now();
      const key = relayTickKey(options.name, tick);
      const claimed = await options.store.claim(key, ttlSeconds).catch((error: unknown) => {
        finish('stopped');
        throw error;
      });
      if (!claimed) {
        finish('duplicate tick');
        return false;
      }
      if (state !== 'new') {
        // Stopped while announcing: the claim goes back, or the predecessor would hand over to a
        // poller that takes nothing.
        await options.store.release(key).catch(() => {
          // The claim expires with its TTL; until then this is a poller lost after announcing.
        });
        return false;
      }
      state = 'taking';
      void look();
      return true;
    },
    keepTaking() {
      if (state !== 'taking') return false;
      const handedOver =
        successorSeenAt !== undefined &&
        now() - successorSeenAt >= overlapMs &&
        now() - startedAt >= (options.minDrainMs ?? 0);
      if (handedOver || options.hardStop()) {
        finish(handedOver ? 'handed over' : 'hard stop');
        return false;
      }
      return true;
    },
    stop: () => finish('stopped'),
    stoppedBecause: () => reason,
  };
}
