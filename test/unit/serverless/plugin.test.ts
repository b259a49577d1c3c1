import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
    const resources = serverless.service.provider.compiledCloudFormationTemplate?.Resources ?? {};
    expect(Object.keys(resources)).toEqual(['CeleryFunctionRole', 'CeleryPollerRole']);
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
