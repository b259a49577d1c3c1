/**
 * Polling for a condition in integration tests: what a worker, a broker or a Python process
 * does in the background shows up a little later.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Resolves once `condition` holds, checked every 50 ms; rejects after `timeoutMs` with
 * `describe` (text, or a function giving the state to show at that moment).
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  describe: string | (() => string),
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      const what = typeof describe === 'string' ? describe : describe();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(50);
  }
}
