/**
 * A store of "this happened already" keys, for what must happen at most once: a cron tick
 * published, a task run started (`atMostOnce`), a task run completed (`idempotent`). Redis
 * implements it with `SET NX EX` (Sentry's way); tests use a map.
 */

/** Keys that can be claimed once. */
export interface OnceStore {
  /** True for the first caller of `key` until it expires after `ttlSeconds`. */
  claim(key: string, ttlSeconds: number): Promise<boolean>;
  /** True while `key` is claimed. */
  exists(key: string): Promise<boolean>;
  /** Drops a claim (the claimed work did not happen after all). */
  release(key: string): Promise<void>;
}

/** An in-memory {@link OnceStore}, for tests and single-process use. */
export function memoryOnceStore(now: () => number = Date.now): OnceStore {
  const expiries = new Map<string, number>();
  const live = (key: string) => (expiries.get(key) ?? 0) > now();
  return {
    async claim(key, ttlSeconds) {
      if (live(key)) return false;
      expiries.set(key, now() + ttlSeconds * 1000);
      return true;
    },
    exists: async (key) => live(key),
    async release(key) {
      expiries.delete(key);
    },
  };
}
