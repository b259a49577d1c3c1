/**
 * Cron schedules of periodic tasks: a 5-field cron expression (`*∕5 * * * *`, as in Celery beat's
 * `crontab` and Sentry's schedules) or an AWS-style rate (`rate(1 minute)`). Validated when the
 * task is defined; translated to EventBridge syntax only in the Lambda layer.
 */
import { Cron, CronPattern } from 'croner';

/** Units of a rate schedule. */
export const RATE_UNITS = { minute: 60, hour: 3600, day: 86_400 } as const;

/** A parsed schedule. */
export type Schedule =
  | {
      readonly kind: 'cron';
      /** The five fields, as written: minute hour day-of-month month day-of-week (UTC). */
      readonly expression: string;
    }
  | {
      readonly kind: 'rate';
      readonly value: number;
      readonly unit: keyof typeof RATE_UNITS;
      /** The interval in seconds. */
      readonly seconds: number;
    };

const RATE = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/i;

/**
 * Parses and validates a schedule.
 *
 * @returns the schedule, or a reason it is invalid
 */
export function parseSchedule(
  text: string,
): { ok: true; schedule: Schedule } | { ok: false; reason: string } {
  const trimmed = text.trim();
  const rate = RATE.exec(trimmed);
  if (rate) {
    const value = Number(rate[1]);
    const unit = (rate[2] ?? '').toLowerCase().replace(/s$/, '') as keyof typeof RATE_UNITS;
    if (value < 1) return { ok: false, reason: 'a rate must be at least 1' };
    return { ok: true, schedule: { kind: 'rate', value, unit, seconds: value * RATE_UNITS[unit] } };
  }
  const fields = trimmed.split(/\s+/);
  if (fields.length !== 5) {
    return {
      ok: false,
      reason: `expected 5 cron fields (minute hour day month weekday) or rate(N minutes), got ${JSON.stringify(text)}`,
    };
  }
  try {
    // The pattern alone is what `Cron` parses and validates; importing just it keeps croner's
    // scheduler (about 22 KiB minified) out of functions that only declare tasks.
    new CronPattern(trimmed, 'UTC', { mode: 'auto' });
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  return { ok: true, schedule: { kind: 'cron', expression: fields.join(' ') } };
}

/**
 * The next due instants of a schedule after `from`, in UTC.
 *
 * @param count - how many instants @defaultValue 1
 */
export function nextRuns(schedule: Schedule, from: Date, count = 1): Date[] {
  if (schedule.kind === 'rate') {
    const step = schedule.seconds * 1000;
    const first = Math.floor(from.getTime() / step) * step + step;
    return Array.from({ length: count }, (_, index) => new Date(first + index * step));
  }
  return new Cron(schedule.expression, { paused: true, timezone: 'UTC' }).nextRuns(count, from);
}

/** The seconds between two ticks of a schedule: Celery beat's default `expires`. */
export function scheduleInterval(schedule: Schedule, from = new Date()): number {
  if (schedule.kind === 'rate') return schedule.seconds;
  const [first, second] = nextRuns(schedule, from, 2);
  return ((second as Date).getTime() - (first as Date).getTime()) / 1000;
}

/**
 * The lock key of one tick of one task. The Lambda function and `serverless-celery cron` use the
 * same key, so the two publish a tick once between them.
 *
 * @param tick - the tick's minute, ISO 8601 (`2025-01-01T12:00:00.000Z`)
 */
export function cronTickKey(task: string, tick: string): string {
  return `_sc.cron.${task}.${tick}`;
}
