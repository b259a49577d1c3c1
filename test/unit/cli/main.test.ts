import { describe, expect, it } from 'vitest';
import { AppConfigError } from '../../../src/cli/exit-codes.js';
import { main } from '../../../src/cli/main.js';
import { BrokerError, InvalidConfigError } from '../../../src/core/errors.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { testContext } from '../../helpers/cli.js';
import { fakeBroker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });

describe('main: parsing and exit codes', () => {
  it.each([
    [['--help'], 0],
    [['--version'], 0],
    [['send', '--help'], 0],
    [[], 2],
    [['bogus'], 2],
    [['dlq'], 2],
    [['send'], 2],
    [['send', 'app.add', '--bogus'], 2],
    [['worker', '--concurrency', '0'], 2],
    [['worker', '--invoke', 'remote'], 2],
    [['send', 'app.add', '--kwargs', '{"x":'], 2],
    [['send', 'app.add', '--kwargs', '[1]'], 2],
    [['send', 'app.add', '--args', '{}'], 2],
    [['send', 'app.add', '--eta', 'tomorrow'], 2],
    [['dlq', 'list', '--limit', '-1'], 2],
  ])('%j exits with %i', async (argv, code) => {
    // Prepare
    const context = testContext({ registry: app.registry, broker: fakeBroker() });

    // Act
    const exitCode = await main(argv, context);

    // Assess
    expect(exitCode).toBe(code);
    expect(context.out() + context.err()).not.toBe('');
  });

  it('names the option whose value is bad', async () => {
    // Prepare
    const context = testContext({ registry: app.registry });

    // Act
    await main(['send', 'app.add', '--kwargs', '{"x":'], context);

    // Assess
    expect(context.err()).toMatch(
      /option '--kwargs <json>' argument '\{"x":' is invalid\. not valid JSON/,
    );
  });
});

describe('main: send', () => {
  it('publishes a message built from the options and prints only its id', async () => {
    // Prepare
    const broker = fakeBroker();
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(
      [
        'send',
        'app.add',
        '--kwargs',
        '{"x": 1, "y": 2}',
        '--countdown',
        '30',
        '--expires',
        '600',
        '--priority',
        '3',
      ],
      context,
    );

    // Assess
    expect(code).toBe(0);
    const [message] = broker.published;
    expect(context.out()).toBe(`${message?.id}\n`);
    expect(message).toMatchObject({
      task: 'app.add',
      kwargs: { x: 1, y: 2 },
      priority: 3,
      routingKey: 'jobs',
    });
    const eta = message?.eta?.getTime() ?? 0;
    expect(eta - Date.now()).toBeGreaterThan(25_000);
    expect((message?.expires?.getTime() ?? 0) - eta).toBeGreaterThan(500_000);
    expect(broker.isClosed).toBe(true);
  });

  it('refuses arguments the schema refuses, naming every field, and publishes nothing', async () => {
    // Prepare
    const broker = fakeBroker();
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(['send', 'app.add', '--kwargs', '{"x": "one"}'], context);

    // Assess
    expect(code).toBe(2);
    expect(context.err()).toMatch(
      /invalid arguments for task app\.add:\n {2}kwargs\.x: .*number.*\n {2}kwargs\.y: /,
    );
    expect(broker.published).toEqual([]);
  });

  it('refuses an unknown task and lists the known ones', async () => {
    // Prepare
    const context = testContext({ registry: app.registry, broker: fakeBroker() });

    // Act
    const code = await main(['send', 'app.ad'], context);

    // Assess
    expect(code).toBe(2);
    expect(context.err()).toBe(
      'error: unknown task app.ad: the app test-app has app.add, app.fail, app.tick (for a task another app implements, give --queue)\n',
    );
  });

  it('refuses --countdown together with --eta', async () => {
    // Prepare
    const context = testContext({ registry: app.registry, broker: fakeBroker() });

    // Act
    const code = await main(
      ['send', 'app.fail', '--countdown', '5', '--eta', '2030-01-01T00:00:00Z'],
      context,
    );

    // Assess
    expect(code).toBe(2);
    expect(context.err()).toContain('--countdown and --eta');
  });

  it('warns when the queue is not one the app declares', async () => {
    // Prepare
    const broker = fakeBroker();
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(['send', 'app.fail', '--queue', 'elsewhere'], context);

    // Assess
    expect(code).toBe(0);
    expect(broker.published[0]?.routingKey).toBe('elsewhere');
    expect(context.err()).toContain('queue elsewhere is not declared by the app');
  });
});

describe('main: brokers', () => {
  it('uses --broker over BROKER_URL, and BROKER_URL over the local Redis', async () => {
    // Prepare
    const env = { BROKER_URL: 'redis://10.0.0.1:6379/1' };
    const flagged = testContext({ registry: app.registry, broker: fakeBroker(), env });
    const fromEnv = testContext({ registry: app.registry, broker: fakeBroker(), env });
    const fallback = testContext({ registry: app.registry, broker: fakeBroker() });

    // Act
    await main(['inspect', '--broker', 'amqp://guest:guest@127.0.0.1:5672/'], flagged);
    await main(['inspect'], fromEnv);
    await main(['inspect'], fallback);

    // Assess
    expect(flagged.brokerConfigs[0]).toMatchObject({
      kind: 'rabbitmq',
      url: 'amqp://guest:guest@127.0.0.1:5672/',
    });
    expect(fromEnv.brokerConfigs[0]).toMatchObject({
      kind: 'redis',
      url: 'redis://10.0.0.1:6379/1',
    });
    expect(fallback.brokerConfigs[0]).toMatchObject({
      kind: 'redis',
      url: 'redis://127.0.0.1:6379/0',
    });
    expect(fallback.err()).toBe(
      'note: no --broker and no BROKER_URL: using the local Redis redis://127.0.0.1:6379/0\n',
    );
    expect(flagged.err() + fromEnv.err()).toBe('');
  });

  it('explains an unreachable local broker in one line, password hidden, with the command that starts one (exit 69)', async () => {
    // Prepare
    const failWith = new BrokerError(
      'Redis at 127.0.0.1:6390/6: inspect jobs failed: connection refused (is redis-server running?)',
    );
    const broker = fakeBroker({ failWith });
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(['inspect', '--broker', 'redis://:s3cret@127.0.0.1:6390/6'], context);

    // Assess
    expect(code).toBe(69);
    expect(context.err()).toBe(
      'error: broker redis://:***@127.0.0.1:6390/6 unavailable: inspect jobs failed: connection refused ' +
        '(is redis-server running?). Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6390 --save "" --appendonly no\n',
    );
    expect(context.err()).not.toContain('s3cret');
    expect(broker.isClosed).toBe(true);
  });

  it.each([
    [
      'a RabbitMQ on this machine',
      'amqp://guest:guest@localhost:5672/',
      'connection refused',
      'Start one: rabbitmq-server -detached',
    ],
    ['a remote Redis', 'redis://cache.internal:6379/0', 'connection refused', null],
    ['a wrong password', 'redis://:x@127.0.0.1:6379/0', 'authentication failed', null],
  ])(
    'suggests a start command only for a refused connection on this machine: %s',
    async (_, url, reason, hint) => {
      // Prepare
      const broker = fakeBroker({
        kind: url.startsWith('amqp') ? 'rabbitmq' : 'redis',
        failWith: new BrokerError(`X at h: ${reason}`),
      });
      const context = testContext({ registry: app.registry, broker });

      // Act
      const code = await main(['inspect', '--broker', url], context);

      // Assess
      expect(code).toBe(69);
      if (hint) expect(context.err()).toContain(hint);
      else expect(context.err()).not.toContain('Start one');
    },
  );

  it('calls a bad --broker a usage error and a bad BROKER_URL a configuration error', async () => {
    // Prepare
    const flagged = testContext({ registry: app.registry, broker: fakeBroker() });
    const fromEnv = testContext({
      registry: app.registry,
      broker: fakeBroker(),
      env: { BROKER_URL: 'http://x' },
    });

    // Act
    const flagCode = await main(['inspect', '--broker', 'kafka://x'], flagged);
    const envCode = await main(['inspect'], fromEnv);

    // Assess
    expect(flagCode).toBe(2);
    expect(flagged.err()).toMatch(/^error: --broker: unsupported scheme in kafka:\/\/x/);
    expect(envCode).toBe(78);
    expect(fromEnv.err()).toMatch(/^error: BROKER_URL: unsupported scheme/);
  });
});

describe('main: the app and unexpected errors', () => {
  it('reports an app that cannot be loaded (exit 78)', async () => {
    // Prepare
    const context = testContext({
      loadApp: async () => {
        throw new AppConfigError('the app x.ts exports no registry');
      },
    });

    // Act
    const code = await main(['inspect'], context);

    // Assess
    expect(code).toBe(78);
    expect(context.err()).toBe('error: the app x.ts exports no registry\n');
  });

  it('reports an invalid registry thrown while loading as a configuration error', async () => {
    // Prepare
    const context = testContext({
      loadApp: async () => {
        throw new InvalidConfigError('registry', [
          { path: 'queues[0].name', message: 'is required' },
        ]);
      },
    });

    // Act
    const code = await main(['inspect'], context);

    // Assess
    expect(code).toBe(78);
    expect(context.err()).toBe('error: registry: queues[0].name: is required\n');
  });

  it('reports an unexpected error in one line unless debugging is asked for', async () => {
    // Prepare
    const thrower = async () => {
      throw new RangeError('out of range');
    };
    const quiet = testContext({ loadApp: thrower });
    const debug = testContext({ loadApp: thrower, env: { SERVERLESS_CELERY_DEBUG: '1' } });

    // Act
    const codes = [await main(['inspect'], quiet), await main(['inspect'], debug)];

    // Assess
    expect(codes).toEqual([1, 1]);
    expect(quiet.err()).toBe(
      'error: RangeError: out of range (set SERVERLESS_CELERY_DEBUG=1 for the stack)\n',
    );
    expect(debug.err()).toMatch(/^error: RangeError: out of range\n\s+at /);
  });
});

describe('main: inspect', () => {
  it('prints a table for people and JSON for scripts, one row per queue asked for', async () => {
    // Prepare
    const table = testContext({ registry: app.registry, broker: fakeBroker() });
    const json = testContext({ registry: app.registry, broker: fakeBroker() });

    // Act
    await main(['inspect'], table);
    await main(
      ['inspect', '--json', '--queues', 'jobs,other', '--broker', 'redis://:pw@127.0.0.1:6379/3'],
      json,
    );

    // Assess
    expect(table.out()).toBe(
      'broker: Redis 127.0.0.1:6379 db 0 (default: no --broker, no BROKER_URL)\n' +
        'QUEUE  READY  UNACKED  DELAYED  DEAD\njobs       0        0        0     0\n',
    );
    expect(json.out()).not.toContain('pw');
    expect(JSON.parse(json.out())).toEqual({
      broker: {
        kind: 'redis',
        host: '127.0.0.1',
        port: 6379,
        db: 3,
        tls: false,
        source: '--broker',
      },
      queues: [
        { queue: 'jobs', ready: 0, unacked: 0, delayed: 0, deadLettered: 0 },
        { queue: 'other', ready: 0, unacked: 0, delayed: 0, deadLettered: 0 },
      ],
    });
    expect(json.err()).toContain('queue other is not declared by the app');
  });
});
