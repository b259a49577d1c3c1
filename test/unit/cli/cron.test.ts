import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { BrokerError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import type { TickLock } from '../../../src/lambda/cron-handler.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { memoryTickLock, type TestContext, testContext } from '../../helpers/cli.js';
import { fakeBroker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });
const START = Date.parse('2025-01-01T00:00:30.000Z');

/** A cron "process": its own clock and context, sharing `lock` and `broker` with the others. */
function cronProcess(
  lock: TickLock,
  broker = fakeBroker(),
  stopAt = Date.parse('2025-01-01T00:03:30Z'),
) {
  const urls: string[] = [];
  let context: TestContext | undefined;
  context = testContext({
    registry: app.registry,
    broker,
    start: START,
    tickLock: (url) => {
      urls.push(url);
      return lock;
    },
    onSleep: (now) => {
      if (now >= stopAt) context?.shutdown('SIGINT');
    },
  });
  return { context, broker, urls };
}

describe('cron', () => {
  it('publishes each tick once between two processes, expiring after one interval', async () => {
    // Prepare
    const lock = memoryTickLock();
    const broker = fakeBroker();
    const first = cronProcess(lock, broker);
    const second = cronProcess(lock, broker);

    // Act
    const codes = await Promise.all([
      main(['cron'], first.context),
      main(['cron'], second.context),
    ]);

    // Assess
    expect(codes).toEqual([0, 0]);
    const ticks = [
      '2025-01-01T00:01:00.000Z',
      '2025-01-01T00:02:00.000Z',
      '2025-01-01T00:03:00.000Z',
    ];
    expect(broker.published.map((message) => message.task)).toEqual([
      'app.tick',
      'app.tick',
      'app.tick',
    ]);
    for (const message of broker.published) {
      const expiresIn = (message.expires?.getTime() ?? 0) - Date.now();
      expect(expiresIn).toBeGreaterThan(55_000);
      expect(expiresIn).toBeLessThanOrEqual(60_000);
    }
    expect([...lock.keys.keys()]).toEqual(ticks.map((tick) => `_sc.cron.app.tick.${tick}`));
    expect([...lock.keys.values()]).toEqual([60, 60, 60]);
    const output = first.context.out() + second.context.out();
    for (const tick of ticks) {
      expect(output).toMatch(
        new RegExp(`^${tick}  app\\.tick  published [0-9a-f-]{36} \\(expires in 1m00s\\)$`, 'm'),
      );
      expect(output).toMatch(
        new RegExp(`^${tick}  app\\.tick  skipped: already published for this tick$`, 'm'),
      );
    }
    expect(first.context.err()).toContain(
      'cron: app.tick (* * * * *); broker redis://127.0.0.1:6379/0',
    );
    expect(first.context.err()).toContain('cron: SIGINT: stopping\ncron: stopped\n');
  });

  it('takes the lock from --lock-url, else CRON_LOCK_URL, else the broker', async () => {
    // Prepare
    const tick = ['--tick', '2025-01-01T00:05:00Z'];
    const runs = [
      [['--lock-url', 'redis://lock:6379/2'], {}],
      [[], { CRON_LOCK_URL: 'redis://env-lock:6379/3' }],
      [['--broker', 'redis://:pw@broker:6379/4'], {}],
      [['--broker', 'amqp://guest:guest@127.0.0.1:5672/'], {}],
    ] as const;

    // Act
    const urls: string[] = [];
    for (const [args, env] of runs) {
      const context = testContext({
        registry: app.registry,
        broker: fakeBroker(),
        env,
        tickLock: (url) => {
          urls.push(url);
          return memoryTickLock();
        },
      });
      await main(['cron', ...tick, ...args], context);
    }

    // Assess
    expect(urls).toEqual([
      'redis://lock:6379/2',
      'redis://env-lock:6379/3',
      'redis://:pw@broker:6379/4',
      'amqp://guest:guest@127.0.0.1:5672/',
    ]);
  });

  it('with --tick publishes the tasks due at that minute once, then exits', async () => {
    // Prepare
    const lock = memoryTickLock();
    const broker = fakeBroker();
    const first = cronProcess(lock, broker);
    const second = cronProcess(lock, broker);

    // Act
    const codes = [
      await main(['cron', '--tick', '2025-01-01T00:05:42Z'], first.context),
      await main(['cron', '--tick', '2025-01-01T00:05:00Z'], second.context),
    ];

    // Assess
    expect(codes).toEqual([0, 0]);
    expect(broker.published).toHaveLength(1);
    expect(first.context.out()).toMatch(/^2025-01-01T00:05:00\.000Z {2}app\.tick {2}published /);
    expect(second.context.out()).toBe(
      '2025-01-01T00:05:00.000Z  app.tick  skipped: already published for this tick\n',
    );
  });

  it('says which tasks are not due at a --tick', async () => {
    // Prepare
    const hourly = defineTask({ name: 'h.hourly', queue: 'jobs', cron: '0 * * * *' }, () => null);
    const registry = createRegistry({ tasks: [app.add, hourly], queues: [{ name: 'jobs' }] });
    const context = testContext({
      registry,
      broker: fakeBroker(),
      tickLock: () => memoryTickLock(),
    });

    // Act
    const code = await main(['cron', '--tick', '2025-01-01T00:05:00Z'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.out()).toBe('2025-01-01T00:05:00.000Z  h.hourly  not due at this tick\n');
  });

  it('exits 69 naming the lock Redis (password hidden) when it is unreachable', async () => {
    // Prepare
    const failing: TickLock = {
      claim: async () => {
        throw Object.assign(new Error('Reached the max retries per request limit (which is 1).'), {
          name: 'MaxRetriesPerRequestError',
        });
      },
    };
    const context = testContext({
      registry: app.registry,
      broker: fakeBroker(),
      tickLock: () => failing,
    });

    // Act
    const code = await main(
      ['cron', '--tick', '2025-01-01T00:05:00Z', '--lock-url', 'redis://:pw@127.0.0.1:6400/0'],
      context,
    );

    // Assess
    expect(code).toBe(69);
    expect(context.err()).toContain('not published: lock Redis redis://:***@127.0.0.1:6400/0:');
    expect(context.err()).toContain(
      'error: cron lock Redis redis://:***@127.0.0.1:6400/0 unavailable: no connection (connection refused or lost; is redis-server running?). Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6400',
    );
    expect(context.err()).not.toContain(':pw@');
  });

  it('gives the tick back when publishing fails, so that another process may publish it', async () => {
    // Prepare
    const lock = memoryTickLock();
    const broken = fakeBroker({
      failWith: new BrokerError('Redis at h: publish failed: connection refused'),
    });
    const context = testContext({ registry: app.registry, broker: broken, tickLock: () => lock });
    // The start-up check must pass: only publishing fails.
    Object.assign(broken, {
      stats: async (queue: string) => ({
        queue,
        ready: 0,
        unacked: 0,
        delayed: 0,
        deadLettered: 0,
      }),
    });

    // Act
    const code = await main(['cron', '--tick', '2025-01-01T00:05:00Z'], context);

    // Assess
    expect(code).toBe(69);
    expect(lock.keys.size).toBe(0);
    expect(context.err()).toContain(
      'app.tick  not published: publishing: Redis at h: publish failed',
    );
  });

  it('refuses a lock URL that is neither Redis nor RabbitMQ, and an app with no cron task', async () => {
    // Prepare
    const noCron = createRegistry({ tasks: [app.add], queues: [{ name: 'jobs' }] });
    const badLock = testContext({
      registry: app.registry,
      broker: fakeBroker(),
      env: { BROKER_URL: 'redis://127.0.0.1:6379/0' },
    });
    const empty = testContext({ registry: noCron, broker: fakeBroker() });

    // Act
    const codes = [
      await main(['cron', '--lock-url', 'http://x/'], badLock),
      await main(['cron'], empty),
    ];

    // Assess
    expect(codes).toEqual([2, 78]);
    expect(badLock.err()).toBe(
      'error: the cron lock needs Redis or RabbitMQ: http://x/ is not a redis:// or amqp:// URL\n',
    );
    expect(empty.err()).toBe('error: the app test-app has no task with a cron schedule\n');
  });
});
