import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrokerError, InvalidConfigError, UnknownTaskError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { parseSchedule, type Schedule } from '../../../src/core/schedule.js';
import { defineTask } from '../../../src/core/task.js';
import {
  type CronEvent,
  createCronHandler,
  scheduleInterval,
  type TickLock,
  tickLockAt,
} from '../../../src/lambda/cron-handler.js';
import { fakeBroker, fakeContext, fakeRuntime } from '../../helpers/lambda.js';

const NOW = new Date('2026-03-01T10:15:42.500Z');

const everyFive = defineTask({ name: 'app.every_five', queue: 'q', cron: '*/5 * * * *' }, () => 0);
const hourly = defineTask(
  { name: 'app.hourly', queue: 'q', cron: 'rate(2 hours)', expires: 30 },
  () => 0,
);
const plain = defineTask({ name: 'app.plain', queue: 'q' }, () => 0);
const registry = createRegistry({ tasks: [everyFive, hourly, plain], queues: [{ name: 'q' }] });

/** A lock in memory that records its claims. */
function memoryLock(): TickLock & {
  readonly claims: [string, number][];
  readonly held: Set<string>;
} {
  const claims: [string, number][] = [];
  const held = new Set<string>();
  return {
    claims,
    held,
    async claim(key, ttlSeconds) {
      claims.push([key, ttlSeconds]);
      if (held.has(key)) return false;
      held.add(key);
      return true;
    },
    async release(key) {
      held.delete(key);
    },
  };
}

function schedule(text: string): Schedule {
  const parsed = parseSchedule(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.schedule;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('createCronHandler', () => {
  it("publishes the task's message, expiring after one interval", async () => {
    // Prepare
    const broker = fakeBroker();
    const handler = createCronHandler(fakeRuntime(registry, broker), 'app.every_five', {
      lock: memoryLock(),
    });

    // Act
    const result = await handler({ time: '2026-03-01T10:15:00Z' }, fakeContext());

    // Assess
    expect(broker.published).toEqual([
      expect.objectContaining({
        task: 'app.every_five',
        routingKey: 'q',
        args: [],
        kwargs: {},
        eta: null,
        expires: new Date(NOW.getTime() + 300_000),
      }),
    ]);
    expect(result).toEqual({
      published: true,
      id: broker.published[0]?.id,
      tick: '2026-03-01T10:15:00.000Z',
    });
  });

  it("lets the task's own expires win over the interval", async () => {
    // Prepare
    const broker = fakeBroker();
    const handler = createCronHandler(fakeRuntime(registry, broker), 'app.hourly', {
      lock: memoryLock(),
    });

    // Act
    await handler({ time: '2026-03-01T10:00:00Z' }, fakeContext());

    // Assess
    expect(broker.published[0]?.expires).toEqual(new Date(NOW.getTime() + 30_000));
  });

  it('publishes nothing for a second trigger of the same tick', async () => {
    // Prepare
    const broker = fakeBroker();
    const lock = memoryLock();
    const handler = createCronHandler(fakeRuntime(registry, broker), 'app.every_five', { lock });
    await handler({ time: '2026-03-01T10:15:00Z' }, fakeContext());

    // Act
    const second = await handler({ time: '2026-03-01T10:15:03Z' }, fakeContext());

    // Assess
    expect(second).toEqual({
      published: false,
      tick: '2026-03-01T10:15:00.000Z',
      reason: 'already published for this tick',
    });
    expect(broker.published).toHaveLength(1);
    expect(lock.claims).toEqual([
      ['_sc.cron.app.every_five.2026-03-01T10:15:00.000Z', 300],
      ['_sc.cron.app.every_five.2026-03-01T10:15:00.000Z', 300],
    ]);
  });

  it.each<[string, CronEvent[], string[]]>([
    [
      'event.time, floored to its minute',
      [{ time: '2026-03-01T10:15:00Z' }, { time: '2026-03-01T10:15:59.999Z' }],
      ['2026-03-01T10:15:00.000Z'],
    ],
    [
      'the next minute as a new tick',
      [{ time: '2026-03-01T10:15:59Z' }, { time: '2026-03-01T10:16:00Z' }],
      ['2026-03-01T10:15:00.000Z', '2026-03-01T10:16:00.000Z'],
    ],
    ['the current minute when the event has no time', [{}, {}], ['2026-03-01T10:15:00.000Z']],
    [
      'the time of a late delivery, not the clock',
      [{ time: '2026-03-01T09:00:00Z' }, {}],
      ['2026-03-01T09:00:00.000Z', '2026-03-01T10:15:00.000Z'],
    ],
  ])('ticks by %s', async (_, events, published) => {
    // Prepare
    const broker = fakeBroker();
    const handler = createCronHandler(fakeRuntime(registry, broker), 'app.every_five', {
      lock: memoryLock(),
    });

    // Act
    const ticks: string[] = [];
    for (const event of events) {
      const result = await handler(event, fakeContext());
      if (result.published) ticks.push(result.tick);
    }

    // Assess
    expect(ticks).toEqual(published);
    expect(broker.published).toHaveLength(published.length);
  });

  it('gives the tick back when publishing fails, so the retried trigger publishes it', async () => {
    // Prepare
    const down = fakeBroker({ failWith: new BrokerError('broker down') });
    const up = fakeBroker();
    let broker = down;
    const runtime = { registry, broker: () => broker };
    const handler = createCronHandler(runtime, 'app.every_five', { lock: memoryLock() });
    const event = { time: '2026-03-01T10:15:00Z' };

    // Act
    const failed = handler(event, fakeContext());
    await expect(failed).rejects.toThrow(BrokerError);
    broker = up;
    const retried = await handler(event, fakeContext());

    // Assess
    expect(retried).toMatchObject({ published: true });
    expect(up.published).toHaveLength(1);
  });

  it.each<[string, string, new (...args: never[]) => Error]>([
    ['a task without cron', 'app.plain', InvalidConfigError],
    ['an unknown task', 'app.nope', UnknownTaskError],
  ])('refuses to build the handler of %s', (_, task, error) => {
    // Act
    const build = () =>
      createCronHandler(fakeRuntime(registry, fakeBroker()), task, {
        lock: memoryLock(),
      });

    // Assess
    expect(build).toThrow(error);
  });
});

describe('scheduleInterval', () => {
  it.each([
    ['* * * * *', 60],
    ['*/5 * * * *', 300],
    ['0 * * * *', 3_600],
    ['0 3 * * *', 86_400],
    ['rate(1 minute)', 60],
    ['rate(2 hours)', 7_200],
    ['rate(3 days)', 259_200],
  ])('%s ticks every %i seconds', (text, seconds) => {
    // Act
    const interval = scheduleInterval(schedule(text), new Date('2026-03-01T10:15:00Z'));

    // Assess
    expect(interval).toBe(seconds);
  });
});

describe('tickLockAt', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('refuses a URL of no broker, naming the reason', () => {
    // Act
    const attempt = () => tickLockAt('http://127.0.0.1:6379/0');

    // Assess
    expect(attempt).toThrow(InvalidConfigError);
    expect(attempt).toThrow(
      'not a redis://, rediss://, redis+cluster://, rediss+cluster://, amqp:// or amqps:// URL',
    );
  });

  it.each([
    ['rabbitmq', 'redis://127.0.0.1:6379/0', 'a lock on redis is not in this build'],
    ['redis', 'amqp://guest:guest@127.0.0.1:5672/', 'a lock on amqp is not in this build'],
  ])('in a %s build, refuses a lock on %s and says how to pass one', (build, url, reason) => {
    // Prepare
    vi.stubEnv('SERVERLESS_CELERY_BROKER', build);

    // Act
    const attempt = () => tickLockAt(url);

    // Assess
    expect(attempt).toThrow(reason);
    expect(attempt).toThrow('pass one as `lock` to createCronHandler');
  });
});
