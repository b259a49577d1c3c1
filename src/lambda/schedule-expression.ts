/**
 * The one place where a task's schedule becomes EventBridge syntax, for the `schedule` events
 * that `serverless.yml` declares on the `cron-*` functions.
 *
 * EventBridge cron differs from the 5-field cron of `defineTask({ cron })` (Vixie cron, as Celery
 * beat's `crontab` and croner read it): it has a sixth field (year); one of day-of-month and
 * day-of-week must be `?`; day-of-week counts 1–7 from Sunday (cron counts 0–6, and 7 is Sunday
 * again); `/` is not allowed in day-of-week; `L` and `#` take AWS day numbers. Vixie cron runs a
 * job when day-of-month OR day-of-week matches if both are restricted; EventBridge has no way to
 * say that, so such schedules are refused rather than translated to something that runs on other
 * days.
 */
import { InvalidConfigError } from '../core/errors.js';
import type { Schedule } from '../core/schedule.js';

const MONTH_NAMES = [
  'JAN',
  'FEB',
  'MAR',
  'APR',
  'MAY',
  'JUN',
  'JUL',
  'AUG',
  'SEP',
  'OCT',
  'NOV',
  'DEC',
] as const;

/** Cron day names, indexed by the cron day number (0 = Sunday). */
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

/** A cron field's numeric bounds, and the names it accepts (`names[i]` is `min + i`). */
interface FieldSpec {
  readonly label: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const MINUTE: FieldSpec = { label: 'minute', min: 0, max: 59 };
const HOUR: FieldSpec = { label: 'hour', min: 0, max: 23 };
const DAY_OF_MONTH: FieldSpec = { label: 'day-of-month', min: 1, max: 31 };
const MONTH: FieldSpec = { label: 'month', min: 1, max: 12, names: MONTH_NAMES };
// 7 is Sunday too; expandField folds it onto 0 for this field.
const DAY_OF_WEEK: FieldSpec = { label: 'day-of-week', min: 0, max: 7, names: DAY_NAMES };

/**
 * Translates a schedule to an EventBridge schedule expression.
 *
 * A rate keeps its value and gets the unit's number right (`rate(1 minute)`,
 * `rate(5 minutes)`: EventBridge refuses `rate(1 minutes)`). A 5-field cron becomes
 * `cron(minute hour day-of-month month day-of-week *)`: `*` and `?` in day-of-month or
 * day-of-week leave that field to the other one (`?`); day-of-week is written with day names
 * (`MON-FRI`), or AWS day numbers for `L` and `#` (`5#L` → `6L`, last Friday); `*∕n` steps start
 * at the field's first value (`0/5`); other steps and ranges with steps are spelled out as lists.
 *
 * @throws InvalidConfigError when EventBridge cannot express the schedule: both day-of-month and
 *   day-of-week restricted (cron runs when either matches), `L`, `W` or `#` inside a list, or a
 *   field croner accepts but this translation does not know
 * @example
 * toScheduleExpression({ kind: 'cron', expression: '0 9 * * 1-5' }); // 'cron(0 9 ? * MON-FRI *)'
 */
export function toScheduleExpression(schedule: Schedule): string {
  if (schedule.kind === 'rate') {
    return `rate(${schedule.value} ${schedule.value === 1 ? schedule.unit : `${schedule.unit}s`})`;
  }
  const fields = schedule.expression.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw refusal(schedule.expression, 'expected 5 fields: minute hour day month weekday');
  }
  const [minute, hour, dayOfMonth, month, dayOfWeek] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  try {
    // `+` asks croner to AND day-of-month with day-of-week; with a wildcard day-of-month the
    // AND is the weekday alone.
    const weekday = dayOfWeek.startsWith('+') ? dayOfWeek.slice(1) : dayOfWeek;
    const domOpen = isWildcard(dayOfMonth);
    const dowOpen = isWildcard(weekday);
    if (!domOpen && !dowOpen) {
      throw new TranslationError(
        dayOfWeek.startsWith('+')
          ? 'day-of-month AND day-of-week (+): EventBridge needs one of them to be ?'
          : 'both day-of-month and day-of-week are restricted, so cron runs when either ' +
              'matches; EventBridge needs one of them to be ? (use one field, or two tasks)',
      );
    }
    const aws = [
      translatePlain(minute, MINUTE),
      translatePlain(hour, HOUR),
      domOpen ? (dowOpen ? '*' : '?') : translateDayOfMonth(dayOfMonth),
      translatePlain(month, MONTH),
      dowOpen ? '?' : translateDayOfWeek(weekday),
      '*',
    ];
    return `cron(${aws.join(' ')})`;
  } catch (error) {
    if (error instanceof TranslationError) throw refusal(schedule.expression, error.message);
    throw error;
  }
}

/** A reason for refusal, turned into an {@link InvalidConfigError} by the caller. */
class TranslationError extends Error {
  override name = 'TranslationError' as const;
}

function refusal(expression: string, message: string): InvalidConfigError {
  return new InvalidConfigError(`cron ${JSON.stringify(expression)} for EventBridge`, [
    { path: 'cron', message },
  ]);
}

function isWildcard(field: string): boolean {
  return field === '*' || field === '?';
}

/** Minute, hour, month: `*` stays, `*∕n` starts at the minimum, anything else is listed. */
function translatePlain(field: string, spec: FieldSpec): string {
  if (isWildcard(field)) return '*';
  const step = /^[*?]\/(\d+)$/.exec(field);
  if (step) return `${spec.min}/${step[1]}`;
  return compress([...expandField(field, spec)]).join(',');
}

function translateDayOfMonth(field: string): string {
  const upper = field.toUpperCase();
  // Last day, last weekday, nearest weekday to a day: same syntax in EventBridge, alone only.
  if (upper === 'L' || upper === 'LW' || /^\d{1,2}W$/.test(upper)) return upper;
  if (/[LW]/.test(upper)) {
    throw new TranslationError(`day-of-month ${field}: L and W must stand alone for EventBridge`);
  }
  return translatePlain(field, DAY_OF_MONTH);
}

function translateDayOfWeek(field: string): string {
  const upper = field.toUpperCase();
  const last = /^([A-Z]{3}|\d)(?:#L|L)$/.exec(upper);
  if (last) return `${awsDay(last[1] as string)}L`;
  const nth = /^([A-Z]{3}|\d)#([1-5])$/.exec(upper);
  if (nth) return `${awsDay(nth[1] as string)}#${nth[2]}`;
  if (/[L#]/.test(upper)) {
    throw new TranslationError(
      `day-of-week ${field}: EventBridge takes L and # on a single day only`,
    );
  }
  // EventBridge has no `/` in day-of-week, so every form is spelled out as days, in AWS order
  // (SUN = 1 … SAT = 7), with names so nobody has to know which numbering is meant.
  const days = [...expandField(field, DAY_OF_WEEK)].map((day) => day + 1).sort((a, b) => a - b);
  return compress(days, (day) => DAY_NAMES[day - 1] as string).join(',');
}

/** The AWS day number (SUN = 1) of a cron day number (0 or 7 = SUN) or name. */
function awsDay(day: string): number {
  const index = /^\d$/.test(day) ? Number(day) % 7 : (DAY_NAMES as readonly string[]).indexOf(day);
  if (index < 0) throw new TranslationError(`day-of-week: unknown day ${day}`);
  return index + 1;
}

/** Every value a field selects, sorted; day-of-week folds 7 onto 0 (Sunday). */
function expandField(field: string, spec: FieldSpec): Set<number> {
  const values = new Set<number>();
  for (const part of field.toUpperCase().split(',')) {
    const match = /^([^/-]+)(?:-([^/-]+))?(?:\/(\d+))?$/.exec(part);
    if (!match) throw new TranslationError(`${spec.label} ${field}: cannot read ${part}`);
    const [, from, to, stepText] = match;
    const whole = from === '*' || from === '?';
    if (whole && to !== undefined) {
      throw new TranslationError(`${spec.label} ${field}: cannot read ${part}`);
    }
    const start = whole ? spec.min : fieldValue(from as string, spec, field);
    // A lone value with a step (`5/10`) runs to the end of the range, as in Quartz.
    const end = whole || stepText ? spec.max : start;
    const last = to === undefined ? end : fieldValue(to, spec, field);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1 || last < start) {
      throw new TranslationError(`${spec.label} ${field}: empty range ${part}`);
    }
    for (let value = start; value <= last; value += step) {
      values.add(spec === DAY_OF_WEEK ? value % 7 : value);
    }
  }
  return new Set([...values].sort((a, b) => a - b));
}

function fieldValue(token: string, spec: FieldSpec, field: string): number {
  const named = spec.names?.indexOf(token) ?? -1;
  const value = named >= 0 ? spec.min + named : /^\d+$/.test(token) ? Number(token) : Number.NaN;
  if (!(value >= spec.min && value <= spec.max)) {
    throw new TranslationError(`${spec.label} ${field}: ${token} is out of range`);
  }
  return value;
}

/** Sorted values as a list, runs of three or more written as ranges (`1,2,3,5` → `1-3,5`). */
function compress(values: readonly number[], name: (value: number) => string = String): string[] {
  const parts: string[] = [];
  let index = 0;
  while (index < values.length) {
    let end = index;
    while (end + 1 < values.length && (values[end + 1] as number) === (values[end] as number) + 1) {
      end++;
    }
    const first = values[index] as number;
    const last = values[end] as number;
    if (end - index >= 2) parts.push(`${name(first)}-${name(last)}`);
    else for (let at = index; at <= end; at++) parts.push(name(values[at] as number));
    index = end + 1;
  }
  return parts;
}
