import { Cron } from 'croner';
import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { parseSchedule, type Schedule } from '../../../src/core/schedule.js';
import { toScheduleExpression } from '../../../src/lambda/schedule-expression.js';

/** Parses like `defineTask({ cron })` does, so every case is a schedule a task may declare. */
function schedule(text: string): Schedule {
  const parsed = parseSchedule(text);
  if (!parsed.ok) throw new Error(`test case is not a valid schedule: ${parsed.reason}`);
  return parsed.schedule;
}

function refusalOf(text: string): InvalidConfigError {
  try {
    toScheduleExpression(schedule(text));
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return error as InvalidConfigError;
  }
  throw new Error(`expected ${text} to be refused`);
}

/**
 * The instants an EventBridge cron fires at, read by croner in Quartz mode (SUN = 1, `?`,
 * `0/5`): a reader independent of the translation, to catch a day numbered the wrong way.
 */
function eventBridgeRuns(expression: string, from: Date, count: number): string[] {
  const fields = /^cron\((.*) \*\)$/.exec(expression)?.[1];
  if (!fields) throw new Error(`not a cron expression with any year: ${expression}`);
  const cron = new Cron(`0 ${fields}`, {
    paused: true,
    timezone: 'UTC',
    mode: '6-part',
    alternativeWeekdays: true,
    sloppyRanges: true,
  });
  return cron.nextRuns(count, from).map((date) => date.toISOString());
}

function cronRuns(expression: string, from: Date, count: number): string[] {
  const cron = new Cron(expression, { paused: true, timezone: 'UTC' });
  return cron.nextRuns(count, from).map((date) => date.toISOString());
}

// What osls and Serverless v4 accept for a `schedule` event (their schema's pattern).
const EVENTBRIDGE_SYNTAX =
  /^rate\((?:1 (?:minute|hour|day)|(?:1\d+|[2-9]\d*) (?:minute|hour|day)s)\)$|^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$/;

const RATE_CASES: readonly (readonly [string, string])[] = [
  ['rate(1 minute)', 'rate(1 minute)'],
  ['rate(1 minutes)', 'rate(1 minute)'],
  ['rate(5 minute)', 'rate(5 minutes)'],
  ['rate(2 hours)', 'rate(2 hours)'],
  ['RATE(1 Day)', 'rate(1 day)'],
  ['rate(10 days)', 'rate(10 days)'],
];

const TIME_CASES: readonly (readonly [string, string])[] = [
  ['* * * * *', 'cron(* * * * ? *)'],
  ['0 3 * * *', 'cron(0 3 * * ? *)'],
  ['*/5 * * * *', 'cron(0/5 * * * ? *)'],
  ['0 */2 * * *', 'cron(0 0/2 * * ? *)'],
  ['0-30/10 * * * *', 'cron(0,10,20,30 * * * ? *)'],
  ['0 8-18 * * *', 'cron(0 8-18 * * ? *)'],
  ['15,45 9,17 * * *', 'cron(15,45 9,17 * * ? *)'],
  ['0,1,2,3,10 * * * *', 'cron(0-3,10 * * * ? *)'],
];

const DAY_OF_MONTH_CASES: readonly (readonly [string, string])[] = [
  ['30 2 1 * *', 'cron(30 2 1 * ? *)'],
  ['0 0 1,15 * *', 'cron(0 0 1,15 * ? *)'],
  ['0 0 */2 * *', 'cron(0 0 1/2 * ? *)'],
  ['0 0 L * *', 'cron(0 0 L * ? *)'],
  ['0 0 LW * *', 'cron(0 0 LW * ? *)'],
  ['0 0 15W * *', 'cron(0 0 15W * ? *)'],
  ['0 0 ? * *', 'cron(0 0 * * ? *)'],
  ['0 0 1 */3 *', 'cron(0 0 1 1/3 ? *)'],
  ['0 0 1 JAN,jul *', 'cron(0 0 1 1,7 ? *)'],
  ['0 0 1 mar-may *', 'cron(0 0 1 3-5 ? *)'],
];

const DAY_OF_WEEK_CASES: readonly (readonly [string, string])[] = [
  ['0 9 * * 1-5', 'cron(0 9 ? * MON-FRI *)'],
  ['0 9 * * mon-fri', 'cron(0 9 ? * MON-FRI *)'],
  ['0 0 * * 0', 'cron(0 0 ? * SUN *)'],
  ['0 0 * * 7', 'cron(0 0 ? * SUN *)'],
  ['0 0 * * 0,7', 'cron(0 0 ? * SUN *)'],
  ['0 0 * * 6,0', 'cron(0 0 ? * SUN,SAT *)'],
  ['0 0 * * SAT,SUN', 'cron(0 0 ? * SUN,SAT *)'],
  ['0 0 * * 5-7', 'cron(0 0 ? * SUN,FRI,SAT *)'],
  ['0 0 * * */2', 'cron(0 0 ? * SUN,TUE,THU,SAT *)'],
  ['0 0 * * 1-5/2', 'cron(0 0 ? * MON,WED,FRI *)'],
  ['0 0 * * 0-6', 'cron(0 0 ? * SUN-SAT *)'],
  ['0 0 * * +MON', 'cron(0 0 ? * MON *)'],
];

const NTH_AND_LAST_CASES: readonly (readonly [string, string])[] = [
  ['0 0 * * 5#L', 'cron(0 0 ? * 6L *)'],
  ['0 0 * * FRI#L', 'cron(0 0 ? * 6L *)'],
  ['0 0 * * 5L', 'cron(0 0 ? * 6L *)'],
  ['0 0 * * 0#L', 'cron(0 0 ? * 1L *)'],
  ['0 0 * * 1#2', 'cron(0 0 ? * 2#2 *)'],
  ['0 0 * * SUN#1', 'cron(0 0 ? * 1#1 *)'],
  ['0 0 * * 7#1', 'cron(0 0 ? * 1#1 *)'],
  ['0 0 * * sat#5', 'cron(0 0 ? * 7#5 *)'],
];

const CRON_CASES = [
  ...TIME_CASES,
  ...DAY_OF_MONTH_CASES,
  ...DAY_OF_WEEK_CASES,
  ...NTH_AND_LAST_CASES,
];

describe('toScheduleExpression', () => {
  it.each(RATE_CASES)(
    'writes %s as %s, with the unit in the number EventBridge requires',
    (text, expected) => {
      expect(toScheduleExpression(schedule(text))).toBe(expected);
    },
  );

  it.each(TIME_CASES)('keeps the time fields of %s and adds the year: %s', (text, expected) => {
    expect(toScheduleExpression(schedule(text))).toBe(expected);
  });

  it.each(DAY_OF_MONTH_CASES)(
    'puts ? in day-of-week when %s restricts only the day of the month: %s',
    (text, expected) => {
      expect(toScheduleExpression(schedule(text))).toBe(expected);
    },
  );

  it.each(DAY_OF_WEEK_CASES)(
    'puts ? in day-of-month when %s restricts only the weekday, named in AWS order: %s',
    (text, expected) => {
      expect(toScheduleExpression(schedule(text))).toBe(expected);
    },
  );

  it.each(NTH_AND_LAST_CASES)(
    'renumbers the day of %s for L and # (SUN = 1): %s',
    (text, expected) => {
      expect(toScheduleExpression(schedule(text))).toBe(expected);
    },
  );

  it.each(CRON_CASES)('fires %s and its translation at the same instants', (text) => {
    const expression = toScheduleExpression(schedule(text));

    for (const from of ['2025-01-01T00:00:00Z', '2028-02-27T23:58:00Z']) {
      expect(eventBridgeRuns(expression, new Date(from), 40)).toEqual(
        cronRuns(text, new Date(from), 40),
      );
    }
  });

  it.each([
    ['0 0 1 * MON', 'both day-of-month and day-of-week are restricted'],
    ['0 0 */2 * 1', 'both day-of-month and day-of-week are restricted'],
    ['0 0 1-7 * 0-6', 'both day-of-month and day-of-week are restricted'],
    ['0 0 1 * +MON', 'day-of-month AND day-of-week (+)'],
    ['0 0 1,L * *', 'L and W must stand alone'],
    ['0 0 * * 1#1,2#2', 'L and # on a single day only'],
    ['0 0 * * 5-6#L', 'L and # on a single day only'],
  ])('refuses %s, which EventBridge cannot express (%s)', (text, reason) => {
    const error = refusalOf(text);

    expect(error.message).toContain(JSON.stringify(text));
    expect(error.issues).toEqual([{ path: 'cron', message: expect.stringContaining(reason) }]);
  });

  it.each([...RATE_CASES, ...CRON_CASES].map(([text]) => text))(
    'writes %s in the syntax osls and Serverless v4 validate',
    (text) => {
      expect(toScheduleExpression(schedule(text))).toMatch(EVENTBRIDGE_SYNTAX);
    },
  );
});
