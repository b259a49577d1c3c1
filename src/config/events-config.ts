/**
 * Whether Celery events are on in a deployed function: `CELERY_EVENTS`, which the plugin sets
 * from `custom.celery.events`. Read once per cold start; off unless it says so, so a function
 * that sends none opens no connection for them.
 */
import { InvalidConfigError } from '../core/errors.js';

/** The environment variable that turns events on: `true`, `1`, `yes` or `on`. */
export const CELERY_EVENTS_ENV = 'CELERY_EVENTS';

const ON = new Set(['true', '1', 'yes', 'on']);
const OFF = new Set(['', 'false', '0', 'no', 'off']);

/**
 * Reads {@link CELERY_EVENTS_ENV}, case-insensitively.
 *
 * @defaultValue false when unset or empty
 * @throws InvalidConfigError naming `CELERY_EVENTS` for any other word (a typo must not silently
 *   leave monitoring off)
 * @example
 * celeryEventsFromEnv({ CELERY_EVENTS: 'true' }) // → true
 */
export function celeryEventsFromEnv(
  env: Record<string, string | undefined> = process.env,
): boolean {
  const given = (env[CELERY_EVENTS_ENV] ?? '').trim().toLowerCase();
  if (ON.has(given)) return true;
  if (OFF.has(given)) return false;
  throw new InvalidConfigError('environment', [
    {
      path: CELERY_EVENTS_ENV,
      message: `must be true or false, not ${JSON.stringify(env[CELERY_EVENTS_ENV])}`,
    },
  ]);
}
