/**
 * What the serverless-celery plugin (src/serverless/) makes of the demo's serverless.yml and task
 * registry, packaged by `osls package` offline (dummy credentials, no network): with the defaults
 * (Redis) and for RabbitMQ on Amazon MQ with the infra/ fragments merged (demo-variants.ts; the
 * VPC + secret variant is serverless-package-vpc.test.ts). Checks the functions against the
 * registry (a function per task under taskFunctionKey(name) whose handler runs that task, a cron
 * trigger per periodic task at toScheduleExpression(its schedule), the poller or the dispatcher,
 * the producers), the CloudFormation template (rules, IAM, environment, event source mapping,
 * routes, log retention, the schedule failure queue) and the bundles in the zips.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { registry } from '../../src/demo/app.js';
import { taskFunctionKey } from '../../src/lambda/function-names.js';
import { brokerConfigFromEnv } from '../../src/lambda/runtime.js';
import { toScheduleExpression } from '../../src/lambda/schedule-expression.js';
import { ROOT } from '../helpers/cli.js';
import {
  type PackagedVariant,
  packageVariants,
  RABBITMQ_ARN,
  RABBITMQ_SECRET_ARN,
  RABBITMQ_URL,
  removePackagedVariants,
} from '../helpers/demo-variants.js';
import {
  actionsOf,
  environmentOf,
  functionArn,
  functionOf,
  functionsByKey,
  type GetAtt,
  iamStatements,
  type PackagedService,
  policiesOf,
  resourcesOfType,
  roleOf,
  scheduleRules,
  type Template,
  unzip,
} from '../helpers/packaged-service.js';

const run = promisify(execFile);
const PREFIX = 'serverless-celery-dev-';
/** PollerOptions.stopTakingAtMs's default (src/lambda/poller-handler.ts). */
const POLLER_STOP_TAKING_AT_MS = 60_000;
/**
 * A ceiling, not a goal (bench/lambda-cost.ts measures the sizes): the demo's bundles weigh
 * about 260–300 KiB minified, 190 KiB of it ioredis (the broker's client, and the demo store's).
 * Bundling the AWS SDK (about 360 KiB more in the poller and dispatcher), both broker clients or
 * classic zod's locales would cross it.
 */
const BUNDLE_CEILING_BYTES = 400 * 1024;
/** A string of amqplib's (its client properties), present in a bundle that carries it. */
const AMQPLIB_MARK = 'https://amqp-node.github.io/amqplib/';
/** A key name of the Redis broker's (kombu's unacked index), present where the adapter is. */
const REDIS_BROKER_MARK = 'unacked_index';
/** Where the plugin writes the generated functions' handler files (src/serverless/function-entries.ts). */
const ENTRY_DIR = '.serverless-celery';
/** The demo's own function, written in serverless.yml. */
const DEMO_FUNCTIONS = ['events-api'];
/** Every function's environment: the plugin's (BROKER_URL, FUNCTION_PREFIX) and the demo's. */
const SHARED_ENV = {
  BROKER_URL: 'redis://127.0.0.1:6379/0',
  FUNCTION_PREFIX: PREFIX,
  STORE_URL: 'redis://127.0.0.1:6379/0',
  // serverless.yml's params serviceName, metricsNamespace and logLevel (Powertools).
  POWERTOOLS_SERVICE_NAME: 'serverless-celery',
  POWERTOOLS_METRICS_NAMESPACE: 'ServerlessCelery',
  POWERTOOLS_LOG_LEVEL: 'INFO',
};
/** The on-failure destination of the functions EventBridge invokes. */
const FAILURE_QUEUE_ARN = { 'Fn::GetAtt': ['CeleryScheduleFailureQueue', 'Arn'] };

const TASK_KEYS = registry.tasks.map((task) => taskFunctionKey(task.name));
const CRON_TASKS = registry.tasks.flatMap((task) =>
  task.schedule ? [{ name: task.name, schedule: task.schedule }] : [],
);
const CRON_KEYS = CRON_TASKS.map((task) => `cron-${taskFunctionKey(task.name).slice(5)}`);
const PRODUCER_KEYS = ['producer-http', 'producer-invoke'];

/** The function keys of a service drained by `drainer` (the poller or the dispatcher). */
function expectedKeys(drainer: 'poller' | 'dispatcher'): string[] {
  return [...TASK_KEYS, ...CRON_KEYS, drainer, ...PRODUCER_KEYS, ...DEMO_FUNCTIONS].sort();
}

/** The source of a handler in the packaged copy (`.serverless-celery/x.handler` → `x.js`). */
async function handlerSource(service: PackagedVariant, handler: string): Promise<string> {
  const base = path.join(service.serviceDir, handler.replace(/\.handler$/, ''));
  const file = [`${base}.js`, `${base}.ts`].find((candidate) => existsSync(candidate));
  expect(file, `the source of ${handler}`).toBeDefined();
  return readFile(file as string, 'utf8');
}

/** The task a handler file builds its handler for: createTaskHandler(registry, 'x') → 'x'. */
function factoryTask(source: string, factory: string): string | undefined {
  return new RegExp(`${factory}\\(\\s*[\\w.]+\\s*,\\s*['"]([^'"]+)['"]`).exec(source)?.[1];
}

/** Fails on any ReservedConcurrentExecutions, wherever it is in the template. */
function expectNoReservedConcurrency(template: Template): void {
  const found: string[] = [];
  JSON.stringify(template, (key, value) => {
    if (key === 'ReservedConcurrentExecutions') found.push(JSON.stringify(value));
    return value;
  });
  expect(found).toEqual([]);
}

/**
 * The poller's visibility timeout, as its runtime would read it from its environment, is above
 * its timeout: a message is restored only once the poller that held it is surely gone.
 */
function expectPollerVisibilityBeyondTimeout(service: PackagedService): void {
  const { Properties } = functionOf(service, 'poller');
  const config = parseBrokerConfig(brokerConfigFromEnv(environmentOf(service, 'poller')));

  expect(config.kind).toBe('redis');
  expect(config.kind === 'redis' && config.visibilityTimeout).toBeGreaterThan(
    Properties.Timeout as number,
  );
}

/** The configuration problems osls listed (serverless.yml sets configValidationMode: warn). */
function configWarnings(output: string): string[] {
  const block = /Invalid configuration encountered\n([\s\S]*?)\n\s*\n/.exec(output)?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

/** The one file of a function's zip: its bundle, named after its handler. */
async function bundleOf(service: PackagedService, key: string): Promise<Buffer> {
  const entries = await unzip(path.join(service.dir, `${key}.zip`));
  const name = `${DEMO_FUNCTIONS.includes(key) ? 'functions' : ENTRY_DIR}/${key}.mjs`;
  expect([...entries.keys()], `${key}.zip`).toEqual([name]);
  return entries.get(name) as Buffer;
}

/** The role that may invoke functions, and what it may invoke: exactly the task functions. */
function expectOnlyInvoker(service: PackagedService, key: 'poller' | 'dispatcher'): void {
  const { template } = service;
  const invoking = iamStatements(template).filter(({ statement }) =>
    actionsOf(statement).some((action) => action === '*' || action.startsWith('lambda:')),
  );

  expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
  expect(invoking.map(({ holder }) => holder)).toEqual([roleOf(service, key)]);
  expect(invoking[0]?.statement).toEqual({
    Effect: 'Allow',
    Action: 'lambda:InvokeFunction',
    Resource: [...TASK_KEYS].sort().map((name) => functionArn(`${PREFIX}${name}`)),
  });
  for (const other of functionsByKey(service).keys()) {
    if (other !== key) expect(roleOf(service, other), other).toBe('CeleryFunctionRole');
  }
}

/** The logical id of a function's AWS::Lambda::Function. */
function functionId(service: PackagedService, key: string): string | undefined {
  return resourcesOfType(service.template, 'AWS::Lambda::Function').find(
    ([, resource]) => resource.Properties.FunctionName === `${service.prefix}${key}`,
  )?.[0];
}

/** Every log group's retention, by log group id. */
function logRetentions(template: Template): Record<string, unknown> {
  return Object.fromEntries(
    resourcesOfType(template, 'AWS::Logs::LogGroup').map(([id, resource]) => [
      id,
      resource.Properties.RetentionInDays,
    ]),
  );
}

/** The on-failure destination of each function that has one, by key. */
function failureDestinations(service: PackagedService): Record<string, unknown> {
  const keys = new Map(
    resourcesOfType(service.template, 'AWS::Lambda::Function').map(([id, resource]) => [
      id,
      String(resource.Properties.FunctionName).slice(service.prefix.length),
    ]),
  );
  return Object.fromEntries(
    resourcesOfType(service.template, 'AWS::Lambda::EventInvokeConfig').flatMap(([, config]) => {
      const target = (config.Properties.FunctionName as { Ref: string }).Ref;
      const onFailure = (config.Properties.DestinationConfig as { OnFailure?: unknown })?.OnFailure;
      return onFailure ? [[keys.get(target), onFailure]] : [];
    }),
  );
}

let packaged: Record<'redis' | 'rabbitmq', PackagedVariant>;

beforeAll(async () => {
  packaged = await packageVariants(['redis', 'rabbitmq']);
}, 180_000);

afterAll(removePackagedVariants);

describe('osls package, Redis (the defaults)', () => {
  let service: PackagedVariant;
  let keys: string[];

  beforeAll(() => {
    service = packaged.redis;
    keys = [...functionsByKey(service).keys()].sort();
  });

  it('reports no configuration problem but the build key that Serverless v4 reads', () => {
    expect(configWarnings(service.output)).toEqual(["at root: unrecognized property 'build'"]);
  });

  it('has a function per task, a cron trigger per cron task, the poller, producers and events-api', () => {
    expect(keys).toEqual(expectedKeys('poller'));
  });

  it.each(registry.tasks.map((task) => [task.name, taskFunctionKey(task.name)]))(
    'runs task %s in function %s, whose generated handler builds createTaskHandler for it',
    async (name, key) => {
      const { Properties } = functionOf(service, key);

      expect(Properties.Handler).toBe(`${ENTRY_DIR}/${key}.handler`);
      expect(
        factoryTask(
          await handlerSource(service, Properties.Handler as string),
          'createTaskHandler',
        ),
      ).toBe(name);
    },
  );

  it('triggers every cron task from one cron-* function at its translated schedule', async () => {
    const rules = scheduleRules(service);
    for (const [index, task] of CRON_TASKS.entries()) {
      const key = CRON_KEYS[index] as string;
      const handler = functionOf(service, key).Properties.Handler as string;

      expect(factoryTask(await handlerSource(service, handler), 'createCronHandler')).toBe(
        task.name,
      );
      expect(rules.filter(([target]) => target === key)).toEqual([
        [key, toScheduleExpression(task.schedule), 'ENABLED'],
      ]);
    }
  });

  it('declares every function on nodejs22.x with the shared environment, and the poller its visibility timeout', () => {
    for (const key of keys) {
      const { Properties } = functionOf(service, key);
      expect(Properties.Runtime, key).toBe('nodejs22.x');
      expect(environmentOf(service, key), key).toEqual(
        key === 'poller' ? { ...SHARED_ENV, BROKER_VISIBILITY_TIMEOUT: '960' } : SHARED_ENV,
      );
    }
    expectPollerVisibilityBeyondTimeout(service);
  });

  it('times every task function out before the poller stops taking', () => {
    for (const key of TASK_KEYS) {
      const timeout = functionOf(service, key).Properties.Timeout as number;
      expect(timeout * 1000, key).toBeLessThan(POLLER_STOP_TAKING_AT_MS);
    }
    expect((functionOf(service, 'poller').Properties.Timeout as number) * 1000).toBeGreaterThan(
      POLLER_STOP_TAKING_AT_MS,
    );
  });

  it('routes POST /tasks/{name} to producer-http and the events API to events-api', () => {
    const { template } = service;
    const ids = new Map(
      resourcesOfType(template, 'AWS::Lambda::Function').map(([id, resource]) => [
        id,
        String(resource.Properties.FunctionName).slice(PREFIX.length),
      ]),
    );
    const integrations = new Map(
      resourcesOfType(template, 'AWS::ApiGatewayV2::Integration').map(([id, resource]) => [
        id,
        ids.get((resource.Properties.IntegrationUri as GetAtt)['Fn::GetAtt'][0]),
      ]),
    );
    const routes = resourcesOfType(template, 'AWS::ApiGatewayV2::Route').map(([, resource]) => {
      const target = resource.Properties.Target as { 'Fn::Join': [string, unknown[]] };
      const integration = (target['Fn::Join'][1][1] as { Ref: string }).Ref;
      return `${resource.Properties.RouteKey} → ${integrations.get(integration)}`;
    });

    expect(routes.sort()).toEqual([
      'GET /events/{id} → events-api',
      'POST /events → events-api',
      'POST /tasks/{name} → producer-http',
    ]);
  });

  it('requires IAM-signed requests on every route: publishing tasks and the demo’s events API', () => {
    const auth = Object.fromEntries(
      resourcesOfType(service.template, 'AWS::ApiGatewayV2::Route').map(([, resource]) => [
        resource.Properties.RouteKey,
        resource.Properties.AuthorizationType ?? 'NONE',
      ]),
    );

    expect(auth).toEqual({
      'POST /tasks/{name}': 'AWS_IAM',
      'POST /events': 'AWS_IAM',
      'GET /events/{id}': 'AWS_IAM',
    });
  });

  it('keeps every function’s logs 30 days', () => {
    const retentions = logRetentions(service.template);

    expect(Object.keys(retentions)).toHaveLength(keys.length);
    expect(new Set(Object.values(retentions))).toEqual(new Set([30]));
  });

  it('sends the failed runs of the poller and cron triggers to a queue of the stack, which they may write to', () => {
    const { Resources, Outputs } = service.template;

    expect(failureDestinations(service)).toEqual(
      Object.fromEntries(
        [...CRON_KEYS, 'poller'].map((key) => [key, { Destination: FAILURE_QUEUE_ARN }]),
      ),
    );
    expect(Resources.CeleryScheduleFailureQueue).toEqual({
      Type: 'AWS::SQS::Queue',
      Properties: { MessageRetentionPeriod: 1_209_600, SqsManagedSseEnabled: true },
    });
    expect(Object.keys(Outputs ?? {})).toEqual(
      expect.arrayContaining(['CeleryScheduleFailureQueueUrl', 'CeleryScheduleFailureQueueArn']),
    );
    for (const role of ['CeleryFunctionRole', 'CeleryPollerRole']) {
      expect(policiesOf(service.template, role)['send-failed-events'], role).toEqual([
        { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: FAILURE_QUEUE_ARN },
      ]);
    }
  });

  it('puts no function in a VPC', () => {
    for (const key of keys) {
      expect(functionOf(service, key).Properties.VpcConfig, key).toBeUndefined();
    }
  });

  it('runs the poller every minute, and only the poller and cron-* functions on schedules', () => {
    const rules = scheduleRules(service);

    expect(rules.filter(([key]) => !key?.startsWith('cron-'))).toEqual([
      ['poller', 'rate(1 minute)', 'ENABLED'],
    ]);
    expect(rules.map(([key]) => key).sort()).toEqual([...CRON_KEYS, 'poller'].sort());
    expect(resourcesOfType(service.template, 'AWS::Scheduler::Schedule')).toEqual([]);
  });

  it('reserves concurrency for no function', () => {
    expectNoReservedConcurrency(service.template);
  });

  it('maps no RabbitMQ event source, merges no infra/ fragment, and has no conditions', () => {
    const types = Object.values(service.template.Resources).map((resource) => resource.Type);

    expect(types).not.toContain('AWS::Lambda::EventSourceMapping');
    expect(types.filter((type) => /AmazonMQ|ElastiCache|SecretsManager|EC2/.test(type))).toEqual(
      [],
    );
    expect(service.template.Conditions).toBeUndefined();
    expect(service.template.Parameters).toBeUndefined();
  });

  it('lets only the poller role invoke functions, exactly the task functions', () => {
    expectOnlyInvoker(service, 'poller');
  });

  it('gives no role Amazon MQ, Secrets Manager or EC2 permissions', () => {
    const found = iamStatements(service.template).filter(({ statement }) =>
      actionsOf(statement).some((action) => /^(mq|secretsmanager|ec2):/.test(action)),
    );

    expect(found).toEqual([]);
  });

  it('zips one minified ES module per function and leaves the AWS SDK to the runtime', async () => {
    const sizes: Record<string, string> = {};
    for (const key of keys) {
      const bundle = await bundleOf(service, key);
      const zipped = (await stat(path.join(service.dir, `${key}.zip`))).size;

      // esbuild writes the banner as given, before the minified bundle.
      expect(bundle.toString('utf8', 0, 120), key).toMatch(
        /^import \{ createRequire \} from 'node:module'; const require = createRequire\(/,
      );
      expect(bundle.length, key).toBeLessThan(BUNDLE_CEILING_BYTES);
      sizes[key] =
        `${(bundle.length / 1024).toFixed(0)} KiB (zip ${(zipped / 1024).toFixed(0)} KiB)`;
    }
    const poller = (await bundleOf(service, 'poller')).toString('utf8');

    expect(poller).toMatch(/from"@aws-sdk\/client-lambda"/);
    console.info('bundle sizes', sizes);
  });

  it('builds each function with the Redis broker only, and task functions with no broker', async () => {
    for (const key of keys) {
      const bundle = (await bundleOf(service, key)).toString('utf8');

      expect(bundle, key).not.toContain(AMQPLIB_MARK);
      if (key.startsWith('task-')) expect(bundle, key).not.toContain(REDIS_BROKER_MARK);
    }
    expect((await bundleOf(service, 'poller')).toString('utf8')).toContain(REDIS_BROKER_MARK);
  });

  it('loads every bundle as the runtime does: as ESM, with require for CommonJS dependencies', async () => {
    const dir = path.join(service.serviceDir, '..', 'bundles');
    await mkdir(dir);
    // The runtime provides @aws-sdk/*; the project's node_modules stands in for it.
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    for (const key of keys) {
      const file = path.join(dir, key, `${key}.mjs`);
      await mkdir(path.dirname(file));
      await writeFile(file, await bundleOf(service, key));
      // Importing runs the module's top level (registry, runtime); nothing connects until a
      // handler runs, so the child exits as soon as it has looked.
      const probe = `const m = await import(${JSON.stringify(pathToFileURL(file).href)});
        console.log(typeof m.handler); process.exit(0);`;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], {
        cwd: dir,
        timeout: 30_000,
      });

      expect(stdout.trim(), key).toBe('function');
    }
  });
});

describe('osls package, RabbitMQ on Amazon MQ with every infra/ fragment', () => {
  let service: PackagedVariant;

  beforeAll(() => {
    service = packaged.rabbitmq;
  });

  it('reports no configuration problem but the build key that Serverless v4 reads', () => {
    expect(configWarnings(service.output)).toEqual(["at root: unrecognized property 'build'"]);
  });

  it('has the dispatcher instead of the poller, and the same other functions', () => {
    const keys = [...functionsByKey(service).keys()].sort();

    expect(keys).toEqual(expectedKeys('dispatcher'));
    for (const key of keys) {
      // The functions log in with the event source's secret: no password in the URL.
      expect(environmentOf(service, key), key).toEqual({
        ...SHARED_ENV,
        BROKER_URL: RABBITMQ_URL,
        BROKER_SECRET_ARN: RABBITMQ_SECRET_ARN,
      });
    }
  });

  it('times every task function out before the dispatcher gives up', () => {
    const dispatcher = functionOf(service, 'dispatcher').Properties.Timeout as number;

    for (const key of TASK_KEYS) {
      const timeout = functionOf(service, key).Properties.Timeout as number;
      expect(timeout, key).toBeLessThan(dispatcher);
    }
  });

  it('builds the dispatcher and producers with the RabbitMQ broker only', async () => {
    for (const key of ['dispatcher', ...PRODUCER_KEYS]) {
      const bundle = (await bundleOf(service, key)).toString('utf8');

      expect(bundle, key).toContain(AMQPLIB_MARK);
      expect(bundle, key).not.toContain(REDIS_BROKER_MARK);
    }
  });

  it('maps the queue of the Amazon MQ broker to the dispatcher, with its secret, vhost, batch size and window', () => {
    const mappings = resourcesOfType(service.template, 'AWS::Lambda::EventSourceMapping');

    expect(mappings.map(([, resource]) => resource.Properties)).toEqual([
      {
        FunctionName: { 'Fn::GetAtt': [functionId(service, 'dispatcher'), 'Arn'] },
        EventSourceArn: RABBITMQ_ARN,
        Queues: ['events'],
        // The vhost of the broker URL (…:5671/orders), where the functions publish.
        SourceAccessConfigurations: [
          { Type: 'BASIC_AUTH', URI: RABBITMQ_SECRET_ARN },
          { Type: 'VIRTUAL_HOST', URI: 'orders' },
        ],
        BatchSize: 25,
        MaximumBatchingWindowInSeconds: 5,
      },
    ]);
  });

  it('gives the dispatcher role what the event source needs, and every role the broker’s secret only', () => {
    const found = iamStatements(service.template).filter(({ statement }) =>
      actionsOf(statement).some((action) => /^(mq|secretsmanager|ec2):/.test(action)),
    );
    const dispatcherRole = roleOf(service, 'dispatcher');

    expect(
      found
        .filter(({ holder }) => holder === dispatcherRole)
        .map(({ statement }) => [actionsOf(statement)[0], statement.Resource]),
    ).toEqual([
      ['mq:DescribeBroker', RABBITMQ_ARN],
      ['secretsmanager:GetSecretValue', RABBITMQ_SECRET_ARN],
      ['ec2:CreateNetworkInterface', '*'],
      ['secretsmanager:GetSecretValue', RABBITMQ_SECRET_ARN],
    ]);
    // The producers and cron triggers publish with the secret's user; nothing else to read.
    expect(
      found
        .filter(({ holder }) => holder !== dispatcherRole)
        .map(({ holder, statement }) => [holder, statement]),
    ).toEqual([
      [
        'CeleryFunctionRole',
        { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: RABBITMQ_SECRET_ARN },
      ],
    ]);
  });

  it('opens the /events routes with eventsAuth=none, and keeps publishing signed', () => {
    const auth = Object.fromEntries(
      resourcesOfType(service.template, 'AWS::ApiGatewayV2::Route').map(([, resource]) => [
        resource.Properties.RouteKey,
        resource.Properties.AuthorizationType ?? 'NONE',
      ]),
    );

    expect(auth).toEqual({
      'POST /tasks/{name}': 'AWS_IAM',
      'POST /events': 'NONE',
      'GET /events/{id}': 'NONE',
    });
  });

  it('keeps every function’s logs for logRetentionDays, and sends the cron triggers’ failures to the queue', () => {
    expect(new Set(Object.values(logRetentions(service.template)))).toEqual(new Set([14]));
    expect(failureDestinations(service)).toEqual(
      Object.fromEntries(CRON_KEYS.map((key) => [key, { Destination: FAILURE_QUEUE_ARN }])),
    );
  });

  it('lets only the dispatcher role invoke functions, exactly the task functions', () => {
    expectOnlyInvoker(service, 'dispatcher');
  });

  it('reserves concurrency for no function, and schedules only the cron triggers', () => {
    expectNoReservedConcurrency(service.template);
    expect(scheduleRules(service).map(([key]) => key)).toEqual(CRON_KEYS);
  });

  it('merges an Amazon MQ for RabbitMQ broker whose user comes from a generated secret', () => {
    const { Resources, Outputs } = service.template;
    const secretField = (field: string) => ({
      'Fn::Sub': `{{resolve:secretsmanager:\${AmazonMqSecret}:SecretString:${field}}}`,
    });

    expect(Resources.AmazonMqSecret?.Type).toBe('AWS::SecretsManager::Secret');
    expect(Resources.AmazonMqBroker?.Type).toBe('AWS::AmazonMQ::Broker');
    expect(Resources.AmazonMqBroker?.Properties).toMatchObject({
      EngineType: 'RABBITMQ',
      Users: [{ Username: secretField('username'), Password: secretField('password') }],
    });
    expect(Object.keys(Outputs ?? {})).toEqual(
      expect.arrayContaining(['AmazonMqBrokerArn', 'AmazonMqSecretArn', 'AmazonMqAmqpsEndpoint']),
    );
  });

  it('merges ElastiCache for Redis with a parameter group that never evicts', () => {
    const { Resources, Outputs } = service.template;

    expect(Resources.ElastiCacheParameterGroup?.Properties.Properties).toEqual({
      'maxmemory-policy': 'noeviction',
    });
    expect(Resources.ElastiCacheReplicationGroup?.Properties).toMatchObject({
      Engine: 'redis',
      CacheParameterGroupName: { Ref: 'ElastiCacheParameterGroup' },
      TransitEncryptionEnabled: true,
    });
    expect(Object.keys(Outputs ?? {})).toContain('ElastiCacheRedisUrl');
  });
});
