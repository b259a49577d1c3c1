import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../../src/cli/context.js';
import { main } from '../../../src/cli/main.js';
import { BrokerError } from '../../../src/core/errors.js';
import {
  DEV_ENV,
  type DevReport,
  type DevSettings,
  devSettingsFromEnv,
} from '../../../src/serverless/dev-settings.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import {
  type FakeOffline,
  type FakeOfflineOptions,
  fakeOffline,
  type TestContext,
  testContext,
} from '../../helpers/cli.js';
import { deliveryOf, type FakeBroker, fakeBroker, inProcessInvoker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });
const SERVICE = mkdtempSync(path.join(tmpdir(), 'sc-dev-unit-'));
writeFileSync(path.join(SERVICE, 'serverless.yml'), 'service: my-svc\nprovider:\n  name: aws\n');
writeFileSync(path.join(SERVICE, 'other.yml'), 'service:\n  name: other-svc # v1 form\n');
writeFileSync(path.join(SERVICE, 'nameless.yml'), 'service: !Ref ServiceName\n');
const BROKER = 'redis://:s3cret@127.0.0.1:6379/2';

afterAll(() => rmSync(SERVICE, { recursive: true, force: true }));

/** serverless-offline's route box, as it prints it before it is ready. */
const ROUTE_BOX = [
  '┌──────────────────────────────────────────────────┐',
  '│                                                  │',
  '│   POST | http://127.0.0.1:3100/tasks/{name}      │',
  '│   POST |                                         │',
  '│   http://127.0.0.1:3100/2015-03-31/functions/producer-http/invocations │',
  '│   GET  | http://127.0.0.1:3100/events/{id}       │',
  '└──────────────────────────────────────────────────┘',
];

/** A fake broker whose empty receives wait a little, as a real one does, instead of spinning. */
function waitingBroker(options: Parameters<typeof fakeBroker>[0] = {}): FakeBroker {
  const broker = fakeBroker(options);
  const receive = broker.receive.bind(broker);
  return Object.assign(broker, {
    async receive(queue: string, receiveOptions: { max: number; waitMs: number }) {
      const batch = await receive(queue, receiveOptions);
      if (batch.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      return batch;
    },
  });
}

/** What {@link devContext} may be told. */
interface DevContextOptions {
  /** Sends SIGINT once this many outcome lines were printed. */
  readonly lines?: number;
  /** Sends SIGINT once the banner says it is ready. */
  readonly stopWhenReady?: boolean;
  /** Called once the banner says it is ready. */
  readonly onReady?: (context: TestContext & { readonly offline: FakeOffline }) => void;
  readonly offline?: FakeOfflineOptions;
  readonly env?: Record<string, string>;
  /**
   * What the plugin reports once started; null: nothing (no plugin).
   * @defaultValue the result backend dev asked for, as for a serverless.yml that sets none
   */
  readonly report?: DevReport | null;
}

/** A context in the service folder that the test stops as `options` say. */
function devContext(
  broker: FakeBroker,
  options: DevContextOptions = {},
): TestContext & { readonly offline: FakeOffline } {
  const client = inProcessInvoker(app.registry, { prefix: 'my-svc-dev-' });
  const offline = pluginReporting(
    fakeOffline({ lambdaClient: async () => client, ...options.offline }),
    options.report,
  );
  const context = testContext({
    registry: app.registry,
    broker,
    offline,
    ...(options.env ? { env: options.env } : {}),
  });
  const stdout: CliContext['stdout'] = (text) => {
    context.stdout(text);
    if (context.out().split('\n').length - 1 === options.lines) context.shutdown('SIGINT');
  };
  const stderr: CliContext['stderr'] = (text) => {
    context.stderr(text);
    if (!text.startsWith('Ready in')) return;
    options.onReady?.(devRun);
    if (options.stopWhenReady) context.shutdown('SIGINT');
  };
  const devRun = { ...context, cwd: SERVICE, stdout, stderr, offline };
  return devRun;
}

/** `offline` as if the plugin ran in it: it writes its report where dev's settings say. */
function pluginReporting(offline: FakeOffline, report: DevReport | null | undefined): FakeOffline {
  const start = offline.start.bind(offline);
  return Object.assign(offline, {
    start: async (options: Parameters<FakeOffline['start']>[0]) => {
      const settings = devSettingsFromEnv(options.env);
      if (settings?.reportFile && report !== null) {
        const reported = report ?? { resultBackend: settings.resultBackend };
        writeFileSync(settings.reportFile, JSON.stringify(reported));
      }
      return start(options);
    },
  });
}

describe('dev', () => {
  it("starts serverless-offline for the service, drains the app's queues through it and stops on SIGINT", async () => {
    // Prepare
    const ok = app.add.createMessage({ kwargs: { x: 1, y: 2 } });
    const bad = app.fail.createMessage();
    const broker = waitingBroker({ batches: [[deliveryOf(ok), deliveryOf(bad)]] });
    const context = devContext(broker, { lines: 2, offline: { lines: ROUTE_BOX } });

    // Act
    const code = await main(
      [
        'dev',
        '--broker',
        BROKER,
        '--http-port',
        '3100',
        '--lambda-port',
        '3102',
        '--param',
        'storeUrl=redis://127.0.0.1:6379/9',
      ],
      context,
    );

    // Assess
    expect(code).toBe(0);
    const [started] = context.offline.started;
    expect(started).toMatchObject({
      cwd: SERVICE,
      config: 'serverless.yml',
      stage: 'dev',
      host: '127.0.0.1',
      httpPort: 3100,
      lambdaPort: 3102,
      params: {
        broker: 'redis',
        brokerUrl: BROKER,
        cronLockUrl: BROKER,
        pollerSchedule: 'false',
        producerAuth: 'none',
        storeUrl: 'redis://127.0.0.1:6379/9',
      },
    });
    expect(JSON.parse(started?.env?.[DEV_ENV] ?? '{}')).toEqual({
      broker: { kind: 'redis', url: BROKER },
      cronLockUrl: BROKER,
      pollerSchedule: false,
      producerAuth: 'none',
      resultBackend: '',
      reportFile: expect.stringMatching(/serverless-celery-dev-.*report\.json$/),
    } satisfies DevSettings);
    const lines = context.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  app\\.add\\[${ok.id}\\]  retries 0/2  succeeded in`,
      ),
    );
    expect(lines[1]).toContain(
      `app.fail[${bad.id}]  retries 0/3  dead-lettered: excluded (TypeError: the payload has no body)`,
    );
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual(['done', 'dead-letter']);
    const err = context.err();
    expect(err).toContain('broker Redis 127.0.0.1:6379 db 2');
    expect(err).not.toContain('s3cret');
    expect(err).toContain('[offline] process group 4242');
    expect(err).toContain(
      '  POST http://localhost:3100/tasks/{name}  {"args", "kwargs", "countdown", …} → 202 {id}\n' +
        '  GET  http://localhost:3100/events/{id}\n',
    );
    // serverless-offline's own invoke routes are in its output above, not in the banner.
    expect(err.slice(err.indexOf('Ready in'))).not.toContain('/2015-03-31/functions/');
    expect(err).toContain(
      'the local poller drains jobs on Redis 127.0.0.1:6379 db 2 and invokes my-svc-dev-task-* through http://127.0.0.1:3102',
    );
    expect(err).toMatch(/Stopping: the poller settles what it holds.*\n(.*\n)*Stopped\.\n$/);
    expect(context.offline.ended).toEqual(['stop']);
    expect(broker.isClosed).toBe(true);
  });

  it("takes serverless-offline's ports when free, and free ones beside a running dev", async () => {
    // Prepare
    const first = devContext(waitingBroker(), { env: { BROKER_URL: BROKER }, stopWhenReady: true });
    const second = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      offline: { listening: [3000, 3002] },
      stopWhenReady: true,
    });

    // Act
    const codes = [await main(['dev'], first), await main(['dev'], second)];

    // Assess
    expect(codes).toEqual([0, 0]);
    expect(first.offline.started[0]).toMatchObject({ httpPort: 3000, lambdaPort: 3002 });
    expect(second.offline.started[0]).toMatchObject({ httpPort: 40_000, lambdaPort: 40_001 });
    expect(first.err()).toContain('The service has no HTTP routes.');
  });

  it('picks the HTTP port around a Lambda port asked for', async () => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      stopWhenReady: true,
    });

    // Act
    const code = await main(['dev', '--lambda-port', '3000'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.offline.started[0]).toMatchObject({ httpPort: 40_000, lambdaPort: 3000 });
  });

  it('reads the service name of another configuration, and names the stage in the prefix', async () => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      stopWhenReady: true,
    });

    // Act
    const code = await main(['dev', '--config', 'other.yml', '--stage', 'test'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.offline.started[0]).toMatchObject({ config: 'other.yml', stage: 'test' });
    expect(context.err()).toContain('invokes other-svc-test-task-*');
  });

  it.each([
    [
      ['--config', 'missing.yml'],
      78,
      /^error: no .*missing\.yml: dev runs the service of a serverless\.yml/m,
    ],
    [['--config', 'nameless.yml'], 78, /^error: no literal "service:" name in .*nameless\.yml$/m],
    [['--http-port', '3000'], 69, /^error: --http-port 3000: 127\.0\.0\.1:3000 is already in use/m],
    [['--http-port', '3100', '--lambda-port', '3100'], 2, /must differ/],
    [['--lambda-port', '70000'], 2, /expected a port, 1 to 65535/],
    [['--param', 'storeUrl'], 2, /expected name=value/],
  ])('refuses %j (exit %i) before starting anything', async (args, exitCode, message) => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      offline: { listening: [3000] },
    });

    // Act
    const code = await main(['dev', ...args], context);

    // Assess
    expect(code).toBe(exitCode);
    expect(context.err()).toMatch(message);
    expect(context.offline.started).toEqual([]);
  });

  it('exits 69 with the command that starts a local broker when there is none', async () => {
    // Prepare
    const broker = fakeBroker({
      failWith: new BrokerError(
        'Redis at 127.0.0.1:6390/0: inspect jobs failed: connection refused (is redis-server running?)',
      ),
    });
    const context = devContext(broker);

    // Act
    const code = await main(['dev', '--broker', 'redis://127.0.0.1:6390/0'], context);

    // Assess
    expect(code).toBe(69);
    expect(context.err()).toContain(
      'Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6390',
    );
    expect(context.offline.started).toEqual([]);
  });

  it('exits 1 when serverless-offline does not get ready, having stopped it', async () => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      offline: { failReady: 'serverless-offline exited (code 1) before it was ready' },
    });

    // Act
    const code = await main(['dev'], context);

    // Assess
    expect(code).toBe(1);
    expect(context.err()).toContain(
      'serverless-offline exited (code 1) before it was ready; its output is above.',
    );
    expect(context.offline.ended).toEqual(['stop']);
  });

  it('exits 1 when serverless-offline dies on its own, after the poller settled', async () => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      onReady: (run) => setTimeout(() => run.offline.exit(1), 10),
    });

    // Act
    const code = await main(['dev'], context);

    // Assess
    expect(code).toBe(1);
    expect(context.err()).toContain('serverless-offline exited on its own; its output is above.');
    expect(context.err()).toMatch(/Stopped\.\n$/);
  });

  it('kills serverless-offline when a second Ctrl-C forces the exit', async () => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      onReady: (run) => {
        run.force();
        run.shutdown('SIGINT');
      },
    });

    // Act
    await main(['dev'], context);

    // Assess
    expect(context.offline.ended[0]).toBe('kill');
  });

  it.each([
    [
      '--result-backend',
      { RESULT_BACKEND: 'redis://127.0.0.1:6390/4' },
      'redis://127.0.0.1:6390/3',
    ],
    ['RESULT_BACKEND', { RESULT_BACKEND: ' redis://127.0.0.1:6390/3 ' }, ''],
  ])(
    'asks the plugin for the result backend of %s and stores results there',
    async (_, env, flag) => {
      // Prepare
      const context = devContext(waitingBroker(), {
        env: { BROKER_URL: BROKER, ...env },
        stopWhenReady: true,
      });

      // Act
      const code = await main(['dev', ...(flag ? ['--result-backend', flag] : [])], context);

      // Assess
      expect(code).toBe(0);
      const settings = devSettingsFromEnv(context.offline.started[0]?.env);
      expect(settings?.resultBackend).toBe('redis://127.0.0.1:6390/3');
      expect(context.err()).toContain(
        'through http://127.0.0.1:3002, and stores their results in Redis 127.0.0.1:6390/3.',
      );
    },
  );

  it('stores results where the plugin says the functions store them, never saying the password', async () => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      report: { resultBackend: 'redis://:pw@127.0.0.1:6390/6' },
      stopWhenReady: true,
    });

    // Act
    const code = await main(['dev'], context);

    // Assess
    expect(code).toBe(0);
    expect(devSettingsFromEnv(context.offline.started[0]?.env)?.resultBackend).toBe('');
    expect(context.err()).toContain('and stores their results in Redis 127.0.0.1:6390/6.');
    expect(context.err()).not.toContain('pw');
  });

  it('says that no results are stored when the plugin reported nothing', async () => {
    // Prepare
    const context = devContext(waitingBroker(), {
      env: { BROKER_URL: BROKER },
      report: null,
      stopWhenReady: true,
    });

    // Act
    const code = await main(['dev'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.err()).toContain(
      'Results: the serverless-celery plugin reported no result backend (is it among the plugins of serverless.yml, and of this version?): none are stored.',
    );
    expect(context.err()).not.toContain('stores their results');
  });

  it.each([
    [
      {},
      ['--result-backend', 'amqp://127.0.0.1'],
      2,
      /^error: --result-backend: must start with redis:\/\//m,
    ],
    [
      { RESULT_BACKEND: 'redis://127.0.0.1:6379/0?result_expires=soon' },
      [],
      78,
      /^error: RESULT_BACKEND: expiresSeconds: /m,
    ],
  ])(
    'refuses a bad result backend (%j %j, exit %i) before starting anything',
    async (env, args, exitCode, message) => {
      // Prepare
      const context = devContext(waitingBroker(), { env: { BROKER_URL: BROKER, ...env } });

      // Act
      const code = await main(['dev', ...args], context);

      // Assess
      expect(code).toBe(exitCode);
      expect(context.err()).toMatch(message);
      expect(context.offline.started).toEqual([]);
    },
  );
});
