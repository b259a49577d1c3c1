import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEV_ENV } from '../../../src/serverless/dev-settings.js';
import ServerlessCeleryPlugin from '../../../src/serverless/plugin.js';
import type {
  FunctionDefinition,
  ProviderConfig,
  Serverless,
} from '../../../src/serverless/serverless-types.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

/** The framework's error class: a message, no stack printed. */
class FrameworkError extends Error {
  override name = 'ServerlessError';
}

/** A service as the framework hands it to plugins, with what the test needs recorded. */
interface FakeServerless extends Serverless {
  readonly schemas: Record<string, unknown>[];
}

/** A service folder of its own (the handler files go there), with the app at `app`. */
async function makeServerless(
  custom: Record<string, unknown>,
  overrides: {
    readonly functions?: Record<string, FunctionDefinition>;
    readonly provider?: Partial<ProviderConfig>;
    readonly plugins?: string[];
  } = {},
): Promise<FakeServerless> {
  const serviceDir = await mkdtemp(path.join(tmpdir(), 'sc-plugin-'));
  dirs.push(serviceDir);
  const schemas: Record<string, unknown>[] = [];
  return {
    schemas,
    service: {
      service: 'reports',
      provider: {
        name: 'aws',
        runtime: 'nodejs22.x',
        compiledCloudFormationTemplate: { Resources: {} },
        ...overrides.provider,
      },
      functions: { ...overrides.functions },
      custom,
      plugins: overrides.plugins ?? ['serverless-celery'],
    },
    serviceDir,
    config: { serviceDir },
    configSchemaHandler: {
      defineCustomProperties: (schema) => schemas.push(schema),
      defineFunctionProperties: () => {},
    },
    getProvider: () => ({ getStage: () => 'dev' }),
    classes: { Error: FrameworkError },
  };
}

const dirs: string[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Constructs the plugin as the framework does and runs its `initialize` hook. */
async function initialize(serverless: Serverless): Promise<ServerlessCeleryPlugin> {
  const plugin = new ServerlessCeleryPlugin(serverless, {}, {});
  await plugin.hooks.initialize?.();
  return plugin;
}

describe('ServerlessCeleryPlugin', () => {
  it('defines custom.celery for the framework’s validation when constructed', async () => {
    // Prepare
    const serverless = await makeServerless({ celery: { app: './app.ts' } });

    // Act
    new ServerlessCeleryPlugin(serverless, {}, {});

    // Assess
    expect(serverless.schemas).toHaveLength(1);
    expect(serverless.schemas[0]).toMatchObject({
      properties: { celery: { type: 'object', required: ['app'] } },
    });
  });

  it('adds the functions of a JavaScript app, its environment and the bundling', async () => {
    // Prepare
    const serverless = await makeServerless({
      celery: {
        app: path.join(FIXTURES, 'app.mjs'),
        broker: { kind: 'redis', url: 'redis://r/0' },
      },
      esbuild: { keepNames: true },
    });

    // Act
    await initialize(serverless);

    // Assess
    const { functions, provider, custom } = serverless.service;
    expect(Object.keys(functions).sort()).toEqual([
      'cron-reports-purge',
      'poller',
      'producer-http',
      'producer-invoke',
      'task-reports-purge',
      'task-reports-send',
    ]);
    expect(functions['task-reports-send']).toMatchObject({
      name: 'reports-dev-task-reports-send',
      handler: '.serverless-celery/task-reports-send.handler',
      role: 'CeleryFunctionRole',
    });
    expect(functions['cron-reports-purge']?.events).toEqual([
      { schedule: { rate: ['rate(5 minutes)'], method: 'eventBus' } },
    ]);
    expect(provider.environment).toEqual({
      FUNCTION_PREFIX: 'reports-dev-',
      BROKER_URL: 'redis://r/0',
    });
    expect(serverless.service.package).toEqual({ individually: true });
    expect(custom?.esbuild).toMatchObject({
      format: 'esm',
      outputFileExtension: '.mjs',
      keepNames: true,
      exclude: ['@aws-sdk/*'],
      define: { 'process.env.SERVERLESS_CELERY_BROKER': '"redis"' },
    });
  });

  it('adds the roles to the compiled template when packaging', async () => {
    // Prepare
    const serverless = await makeServerless({ celery: { app: path.join(FIXTURES, 'app.ts') } });
    const plugin = await initialize(serverless);

    // Act
    await plugin.hooks['package:compileEvents']?.();

    // Assess
    const template = serverless.service.provider.compiledCloudFormationTemplate;
    expect(Object.keys(template?.Resources ?? {})).toEqual([
      'CeleryFunctionRole',
      'CeleryPollerRole',
      'CeleryScheduleFailureQueue',
    ]);
    expect(template?.Resources.CeleryScheduleFailureQueue).toEqual({
      Type: 'AWS::SQS::Queue',
      Properties: { MessageRetentionPeriod: 1_209_600, SqsManagedSseEnabled: true },
    });
    expect(Object.keys(template?.Outputs ?? {})).toEqual([
      'CeleryScheduleFailureQueueUrl',
      'CeleryScheduleFailureQueueArn',
    ]);
  });

  it('adds no schedule failure queue when scheduleFailureQueue is off', async () => {
    // Prepare
    const serverless = await makeServerless({
      celery: { app: path.join(FIXTURES, 'app.ts'), scheduleFailureQueue: false },
    });
    const plugin = await initialize(serverless);

    // Act
    await plugin.hooks['package:compileEvents']?.();

    // Assess
    const template = serverless.service.provider.compiledCloudFormationTemplate;
    expect(template?.Resources.CeleryScheduleFailureQueue).toBeUndefined();
    expect(template?.Outputs).toBeUndefined();
    expect(serverless.service.functions.poller?.destinations).toBeUndefined();
  });

  it.each([
    [
      'no URL',
      { kind: 'redis' },
      /url: is not set \(the runtime's default is redis:\/\/127\.0\.0\.1:6379\/0\)/,
    ],
    ['the local default', { kind: 'redis', url: 'redis://127.0.0.1:6379/0' }, /url: is local/],
    ['localhost', { kind: 'rabbitmq', url: 'amqp://localhost:5672/' }, /url: is local/],
  ])(
    'refuses to package %s for stage prod, naming custom.celery.broker.url',
    async (_case, broker, says) => {
      // Prepare
      const serverless = await makeServerless({
        celery: { app: path.join(FIXTURES, 'app.ts'), broker },
      });
      serverless.getProvider = () => ({ getStage: () => 'prod' });
      const plugin = await initialize(serverless);

      // Act
      const error = await Promise.resolve(plugin.hooks['package:compileEvents']?.()).catch(
        (caught: unknown) => caught,
      );

      // Assess
      expect(error).toBeInstanceOf(FrameworkError);
      expect((error as Error).message).toMatch(/^serverless\.yml: custom\.celery\.broker\.url: /);
      expect((error as Error).message).toMatch(says);
      expect((error as Error).message).toContain('stage prod is not one of local, dev');
    },
  );

  it('refuses it before bundling, in the first packaging hook, writing no handler file', async () => {
    // Prepare
    const serverless = await makeServerless({ celery: { app: path.join(FIXTURES, 'app.ts') } });
    serverless.getProvider = () => ({ getStage: () => 'prod' });
    const plugin = await initialize(serverless);

    // Act
    const error = await Promise.resolve(
      plugin.hooks['before:package:createDeploymentArtifacts']?.(),
    ).catch((caught: unknown) => caught);

    // Assess
    expect((error as Error).message).toMatch(/^serverless\.yml: custom\.celery\.broker\.url: /);
    expect(existsSync(path.join(serverless.serviceDir as string, '.serverless-celery'))).toBe(
      false,
    );
  });

  it('leaves generated functions to provider.logRetentionInDays, else keeps their logs 30 days', async () => {
    // Prepare
    const inherit = await makeServerless(
      { celery: { app: path.join(FIXTURES, 'app.ts') } },
      { provider: { logRetentionInDays: 7 } },
    );
    const fallback = await makeServerless({ celery: { app: path.join(FIXTURES, 'app.ts') } });

    // Act
    await initialize(inherit);
    await initialize(fallback);

    // Assess
    expect(inherit.service.functions.poller?.logRetentionInDays).toBeUndefined();
    expect(fallback.service.functions.poller?.logRetentionInDays).toBe(30);
  });

  it('puts your own functions listed in vpc.functions in the broker’s VPC, and gives their role the ENI permissions', async () => {
    // Prepare
    const serverless = await makeServerless(
      {
        celery: {
          app: path.join(FIXTURES, 'app.ts'),
          vpc: { subnetIds: ['subnet-1'], securityGroupIds: 'sg-1', functions: ['api'] },
          producers: { http: { enabled: false }, invoke: { enabled: false } },
        },
      },
      {
        functions: { api: { handler: 'functions/api.handler' } },
        provider: { iam: { role: 'CeleryFunctionRole' } },
      },
    );
    const plugin = await initialize(serverless);

    // Act
    await plugin.hooks['package:compileEvents']?.();

    // Assess
    expect(serverless.service.functions.api?.vpc).toEqual({
      subnetIds: ['subnet-1'],
      securityGroupIds: ['sg-1'],
    });
    const role = serverless.service.provider.compiledCloudFormationTemplate?.Resources
      .CeleryFunctionRole as unknown as { Properties: { Policies: { PolicyName: string }[] } };
    expect(role.Properties.Policies.map((policy) => policy.PolicyName)).toContain(
      'vpc-network-interfaces',
    );
  });

  it('refuses a vpc.functions entry the service has no function of, naming the field', async () => {
    // Prepare
    const serverless = await makeServerless({
      celery: {
        app: path.join(FIXTURES, 'app.ts'),
        vpc: { subnetIds: 'subnet-1', securityGroupIds: 'sg-1', functions: ['apii'] },
      },
    });

    // Act
    const error = await initialize(serverless).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(FrameworkError);
    expect((error as Error).message).toMatch(
      /^serverless\.yml: custom\.celery\.vpc\.functions\.0: no function apii under functions/,
    );
  });

  it('under serverless-celery dev, serves aws_iam routes unsigned and keeps the framework’s names', async () => {
    // Prepare
    const serverless = await makeServerless(
      { celery: { app: path.join(FIXTURES, 'app.ts'), functionPrefix: 'rp-' } },
      {
        functions: {
          api: {
            handler: 'functions/api.handler',
            events: [{ httpApi: { method: 'GET', path: '/x', authorizer: { type: 'aws_iam' } } }],
          },
        },
      },
    );
    const dev = {
      broker: { kind: 'redis', url: 'redis://127.0.0.1:6379/3' },
      cronLockUrl: '',
      pollerSchedule: false,
      producerAuth: 'none',
    };
    vi.stubEnv(DEV_ENV, JSON.stringify(dev));

    // Act
    await initialize(serverless);

    // Assess
    const { functions, provider } = serverless.service;
    expect(functions.api?.events).toEqual([{ httpApi: { method: 'GET', path: '/x' } }]);
    expect(functions.poller?.name).toBe('reports-dev-poller');
    expect(provider.environment?.FUNCTION_PREFIX).toBe('reports-dev-');
  });

  it.each([
    [{ kind: 'redis' }, ['custom.celery.broker.url is not set']],
    [{ kind: 'redis', url: 'rediss://cache.example:6379/0' }, []],
  ])('warns when packaging for a broker it has no URL of: %j', async (broker, warnings) => {
    // Prepare
    const serverless = await makeServerless({
      celery: { app: path.join(FIXTURES, 'app.ts'), broker },
    });
    const said: string[] = [];
    const quiet = () => undefined;
    const log = Object.assign(quiet, {
      error: quiet,
      warning: (message: string) => {
        said.push(message);
      },
      notice: quiet,
      info: quiet,
      verbose: quiet,
      debug: quiet,
    });
    const plugin = new ServerlessCeleryPlugin(serverless, {}, { log });
    await plugin.hooks.initialize?.();

    // Act
    await plugin.hooks['package:compileEvents']?.();

    // Assess
    expect(
      said.map((message) => /custom\.celery\.broker\.url is not set/.exec(message)?.[0]),
    ).toEqual(warnings);
  });

  it.each([
    [
      'a function the plugin generates',
      { functions: { poller: { handler: 'functions/poller.handler' } } },
      /generates functions\.poller from the registry: remove them/,
    ],
    [
      'a BROKER_URL that disagrees with custom.celery.broker.url',
      { provider: { environment: { BROKER_URL: 'redis://other/0' } } },
      /provider\.environment\.BROKER_URL is "redis:\/\/other\/0", but serverless-celery sets it/,
    ],
  ])('refuses %s', async (_case, overrides, message) => {
    // Prepare
    const serverless = await makeServerless(
      {
        celery: {
          app: path.join(FIXTURES, 'app.ts'),
          broker: { kind: 'redis', url: 'redis://r/0' },
        },
      },
      overrides,
    );

    // Act
    const error = await initialize(serverless).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(FrameworkError);
    expect((error as Error).message).toMatch(message);
  });

  it('reports its configuration errors as the framework’s errors, naming the field', async () => {
    // Prepare
    const serverless = await makeServerless({
      celery: { app: path.join(FIXTURES, 'no-registry.mjs') },
    });

    // Act
    const error = await initialize(serverless).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(FrameworkError);
    expect((error as Error).message).toMatch(
      /^serverless\.yml: custom\.celery\.app: .* exports no registry/,
    );
  });

  it('refuses a service that lists serverless-esbuild too, which it runs itself', async () => {
    // Prepare
    const serverless = await makeServerless(
      { celery: { app: './app.ts' } },
      { plugins: ['serverless-celery', 'serverless-esbuild'] },
    );

    // Act
    const construct = () => new ServerlessCeleryPlugin(serverless, {}, {});

    // Assess
    expect(construct).toThrow(/remove serverless-esbuild from `plugins`/);
  });

  it('answers serverless-esbuild’s hooks, so a service lists only serverless-celery', async () => {
    // Prepare
    const serverless = await makeServerless({ celery: { app: './app.ts' } });

    // Act
    const plugin = new ServerlessCeleryPlugin(serverless, {}, {});

    // Assess
    expect(Object.keys(plugin.hooks)).toEqual(
      expect.arrayContaining([
        'initialize',
        'before:package:createDeploymentArtifacts',
        'before:offline:start:init',
        'package:compileEvents',
      ]),
    );
  });
});
