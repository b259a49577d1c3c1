/**
 * What the serverless-celery plugin (src/serverless/) makes of the demo's serverless.yml and task
 * registry, packaged by `osls package` offline (dummy credentials, no network): once with the
 * defaults (Redis) and once for RabbitMQ on Amazon MQ with every infra/ fragment merged. Checks
 * the functions against the registry (a function per task under taskFunctionKey(name) whose
 * handler runs that task, a cron trigger per periodic task at toScheduleExpression(its schedule),
 * the poller or the dispatcher, the producers), the CloudFormation template (rules, IAM,
 * environment, event source mapping, routes) and the bundles in the zips.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import type { Schedule } from '../../src/core/schedule.js';
import { registry } from '../../src/demo/app.js';
import { taskFunctionKey } from '../../src/lambda/function-names.js';
import { brokerConfigFromEnv } from '../../src/lambda/runtime.js';
import { toScheduleExpression } from '../../src/lambda/schedule-expression.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const STAGE = 'dev';
const PREFIX = `serverless-celery-${STAGE}-`;
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
const RABBITMQ_ARN =
  'arn:aws:mq:us-east-1:123456789012:broker:celery:b-0f5f3b4e-1111-2222-3333-444455556666';
const RABBITMQ_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:celery-AbCdEf';
const RABBITMQ_URL =
  'amqps://b-0f5f3b4e-1111-2222-3333-444455556666.mq.us-east-1.amazonaws.com:5671';
/** Every function's environment: the plugin's (BROKER_URL, FUNCTION_PREFIX) and the demo's. */
const SHARED_ENV = {
  BROKER_URL: 'redis://127.0.0.1:6379/0',
  FUNCTION_PREFIX: PREFIX,
  STORE_URL: 'redis://127.0.0.1:6379/0',
};

interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
  readonly Condition?: string;
}

interface Template {
  readonly Resources: Record<string, Resource>;
  readonly Outputs: Record<string, unknown>;
  readonly Conditions?: Record<string, unknown>;
}

interface Statement {
  readonly Effect: string;
  readonly Action: string | readonly string[];
  readonly Resource: unknown;
}

type GetAtt = { readonly 'Fn::GetAtt': readonly [string, string] };

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

/** The source of a handler (`.serverless-celery/x.handler` → `.serverless-celery/x.js`). */
async function handlerSource(handler: string): Promise<string> {
  const base = path.join(ROOT, handler.replace(/\.handler$/, ''));
  const file = [`${base}.js`, `${base}.ts`].find((candidate) => existsSync(candidate));
  expect(file, `the source of ${handler}`).toBeDefined();
  return readFile(file as string, 'utf8');
}

/** The task a handler file builds its handler for: createTaskHandler(registry, 'x') → 'x'. */
function factoryTask(source: string, factory: string): string | undefined {
  return new RegExp(`${factory}\\(\\s*[\\w.]+\\s*,\\s*['"]([^'"]+)['"]`).exec(source)?.[1];
}

/** The ARN granted for a function key. */
function functionArn(key: string): { 'Fn::Sub': string } {
  const account = ['Partition', 'Region', 'AccountId'].map((name) => `\${AWS::${name}}`);
  return {
    'Fn::Sub': `arn:${account[0]}:lambda:${account[1]}:${account[2]}:function:${PREFIX}${key}`,
  };
}

function expression(schedule: Schedule): string {
  return toScheduleExpression(schedule);
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
function expectPollerVisibilityBeyondTimeout(template: Template): void {
  const { Properties } = functionResource(template, 'poller');
  const env = (Properties.Environment as { Variables: Record<string, string> }).Variables;
  const config = parseBrokerConfig(brokerConfigFromEnv(env));

  expect(config.kind).toBe('redis');
  expect(config.kind === 'redis' && config.visibilityTimeout).toBeGreaterThan(
    Properties.Timeout as number,
  );
}

/** A packaged service: the directory of its zips, its template and what osls printed. */
interface Packaged {
  readonly dir: string;
  readonly template: Template;
  readonly output: string;
}

const temporaryDirs: string[] = [];

afterAll(async () => {
  await Promise.all(temporaryDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function temporaryDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  temporaryDirs.push(dir);
  return dir;
}

/** Runs `osls package` offline into a new temporary directory. */
async function packageService(params: Record<string, string>): Promise<Packaged> {
  const dir = await temporaryDir('sls-package-');
  const args = ['osls', 'package', '--stage', STAGE, '--package', dir];
  for (const [name, value] of Object.entries(params)) args.push(`--param=${name}=${value}`);
  const { stdout, stderr } = await run('npx', args, {
    cwd: ROOT,
    timeout: 150_000,
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', FORCE_COLOR: '0' },
  });
  const template = JSON.parse(
    await readFile(path.join(dir, 'cloudformation-template-update-stack.json'), 'utf8'),
  ) as Template;
  return { dir, template, output: `${stdout}\n${stderr}` };
}

/** The configuration problems osls listed (serverless.yml sets configValidationMode: warn). */
function configWarnings(output: string): string[] {
  const block = /Invalid configuration encountered\n([\s\S]*?)\n\s*\n/.exec(output)?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

function resourcesOfType(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

/** Function key → logical id of its AWS::Lambda::Function. */
function functionIds(template: Template): Map<string, string> {
  return new Map(
    resourcesOfType(template, 'AWS::Lambda::Function').map(([id, resource]) => [
      String(resource.Properties.FunctionName).slice(PREFIX.length),
      id,
    ]),
  );
}

function functionResource(template: Template, key: string): Resource {
  const resource = template.Resources[functionIds(template).get(key) ?? ''];
  if (!resource) throw new Error(`no function ${key} in the template`);
  return resource;
}

function roleOf(template: Template, key: string): string {
  return (functionResource(template, key).Properties.Role as GetAtt)['Fn::GetAtt'][0];
}

/** The rule's target function, state and expression, for every EventBridge rule. */
function scheduleRules(template: Template): [string | undefined, unknown, unknown][] {
  const keys = new Map([...functionIds(template)].map(([key, id]) => [id, key]));
  return resourcesOfType(template, 'AWS::Events::Rule').map(([, resource]) => {
    const [target] = resource.Properties.Targets as { Arn: GetAtt }[];
    const key = keys.get(target?.Arn['Fn::GetAtt'][0] ?? '');
    return [key, resource.Properties.ScheduleExpression, resource.Properties.State];
  });
}

/** Every IAM statement in the template, with the role or policy that holds it. */
function iamStatements(template: Template): { holder: string; statement: Statement }[] {
  const found: { holder: string; statement: Statement }[] = [];
  for (const [id, resource] of resourcesOfType(template, 'AWS::IAM::Role')) {
    // Plain policies only: an Fn::If here (a branch for the other broker) fails the test.
    for (const policy of (resource.Properties.Policies ?? []) as unknown[]) {
      const document = (policy as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument;
      for (const statement of document.Statement) found.push({ holder: id, statement });
    }
  }
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [id, resource] of resourcesOfType(template, type)) {
      const document = resource.Properties.PolicyDocument as { Statement: Statement[] };
      for (const statement of document.Statement) found.push({ holder: id, statement });
    }
  }
  return found;
}

function actions(statement: Statement): readonly string[] {
  return typeof statement.Action === 'string' ? [statement.Action] : statement.Action;
}

/** The entries of a zip archive as osls writes them (stored or deflated), by name. */
async function unzip(file: string): Promise<Map<string, Buffer>> {
  const zip = await readFile(file);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries = new Map<string, Buffer>();
  for (let index = 0; index < count; index++) {
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    const local = zip.readUInt32LE(at + 42);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + compressedSize);
    entries.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

/** The one file of a function's zip: its bundle, named after its handler. */
async function bundleOf(service: Packaged, key: string): Promise<Buffer> {
  const entries = await unzip(path.join(service.dir, `${key}.zip`));
  const name = `${DEMO_FUNCTIONS.includes(key) ? 'functions' : ENTRY_DIR}/${key}.mjs`;
  expect([...entries.keys()], `${key}.zip`).toEqual([name]);
  return entries.get(name) as Buffer;
}

function environmentOf(template: Template, key: string): Record<string, string> {
  const { Properties } = functionResource(template, key);
  return (Properties.Environment as { Variables: Record<string, string> }).Variables;
}

/** The role that may invoke functions, and what it may invoke: exactly the task functions. */
function expectOnlyInvoker(template: Template, key: 'poller' | 'dispatcher'): void {
  const invoking = iamStatements(template).filter(({ statement }) =>
    actions(statement).some((action) => action === '*' || action.startsWith('lambda:')),
  );

  expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
  expect(invoking.map(({ holder }) => holder)).toEqual([roleOf(template, key)]);
  expect(invoking[0]?.statement).toEqual({
    Effect: 'Allow',
    Action: 'lambda:InvokeFunction',
    Resource: [...TASK_KEYS].sort().map((name) => functionArn(name)),
  });
  for (const other of functionIds(template).keys()) {
    if (other !== key) expect(roleOf(template, other), other).toBe('CeleryFunctionRole');
  }
}

describe('osls package, Redis (the defaults)', () => {
  let service: Packaged;
  let keys: string[];

  beforeAll(async () => {
    service = await packageService({});
    keys = [...functionIds(service.template).keys()].sort();
  }, 180_000);

  it('reports no configuration problem but the build key that Serverless v4 reads', () => {
    expect(configWarnings(service.output)).toEqual(["at root: unrecognized property 'build'"]);
  });

  it('has a function per task, a cron trigger per cron task, the poller, producers and events-api', () => {
    expect(keys).toEqual(expectedKeys('poller'));
  });

  it.each(registry.tasks.map((task) => [task.name, taskFunctionKey(task.name)]))(
    'runs task %s in function %s, whose generated handler builds createTaskHandler for it',
    async (name, key) => {
      const { Properties } = functionResource(service.template, key);

      expect(Properties.Handler).toBe(`${ENTRY_DIR}/${key}.handler`);
      expect(
        factoryTask(await handlerSource(Properties.Handler as string), 'createTaskHandler'),
      ).toBe(name);
    },
  );

  it('triggers every cron task from one cron-* function at its translated schedule', async () => {
    const rules = scheduleRules(service.template);
    for (const [index, task] of CRON_TASKS.entries()) {
      const key = CRON_KEYS[index] as string;
      const handler = functionResource(service.template, key).Properties.Handler as string;

      expect(factoryTask(await handlerSource(handler), 'createCronHandler')).toBe(task.name);
      expect(rules.filter(([target]) => target === key)).toEqual([
        [key, expression(task.schedule), 'ENABLED'],
      ]);
    }
  });

  it('declares every function on nodejs22.x with the shared environment, and the poller its visibility timeout', () => {
    for (const key of keys) {
      const { Properties } = functionResource(service.template, key);
      expect(Properties.Runtime, key).toBe('nodejs22.x');
      expect(environmentOf(service.template, key), key).toEqual(
        key === 'poller' ? { ...SHARED_ENV, BROKER_VISIBILITY_TIMEOUT: '960' } : SHARED_ENV,
      );
    }
    expectPollerVisibilityBeyondTimeout(service.template);
  });

  it('times every task function out before the poller stops taking', () => {
    for (const key of TASK_KEYS) {
      const timeout = functionResource(service.template, key).Properties.Timeout as number;
      expect(timeout * 1000, key).toBeLessThan(POLLER_STOP_TAKING_AT_MS);
    }
    expect(
      (functionResource(service.template, 'poller').Properties.Timeout as number) * 1000,
    ).toBeGreaterThan(POLLER_STOP_TAKING_AT_MS);
  });

  it('routes POST /tasks/{name} to producer-http and the events API to events-api', () => {
    const { template } = service;
    const ids = new Map([...functionIds(template)].map(([key, id]) => [id, key]));
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

  it('requires IAM-signed requests to publish tasks over HTTP', () => {
    const auth = Object.fromEntries(
      resourcesOfType(service.template, 'AWS::ApiGatewayV2::Route').map(([, resource]) => [
        resource.Properties.RouteKey,
        resource.Properties.AuthorizationType ?? 'NONE',
      ]),
    );

    expect(auth['POST /tasks/{name}']).toBe('AWS_IAM');
  });

  it('runs the poller every minute, and only the poller and cron-* functions on schedules', () => {
    const rules = scheduleRules(service.template);

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
    expect(types.filter((type) => /AmazonMQ|ElastiCache|SecretsManager/.test(type))).toEqual([]);
    expect(service.template.Conditions).toBeUndefined();
  });

  it('lets only the poller role invoke functions, exactly the task functions', () => {
    expectOnlyInvoker(service.template, 'poller');
  });

  it('gives no role Amazon MQ, Secrets Manager or EC2 permissions', () => {
    const found = iamStatements(service.template).filter(({ statement }) =>
      actions(statement).some((action) => /^(mq|secretsmanager|ec2):/.test(action)),
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
    const dir = await temporaryDir('sls-bundles-');
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
  let service: Packaged;

  beforeAll(async () => {
    service = await packageService({
      broker: 'rabbitmq',
      brokerUrl: RABBITMQ_URL,
      rabbitmqArn: RABBITMQ_ARN,
      rabbitmqSecretArn: RABBITMQ_SECRET_ARN,
      rabbitmqBatchSize: '25',
      rabbitmqBatchWindow: '5',
      amazonMq: 'true',
      elastiCache: 'true',
    });
  }, 180_000);

  it('reports no configuration problem but the build key that Serverless v4 reads', () => {
    expect(configWarnings(service.output)).toEqual(["at root: unrecognized property 'build'"]);
  });

  it('has the dispatcher instead of the poller, and the same other functions', () => {
    const keys = [...functionIds(service.template).keys()].sort();

    expect(keys).toEqual(expectedKeys('dispatcher'));
    for (const key of keys) {
      expect(environmentOf(service.template, key), key).toEqual({
        ...SHARED_ENV,
        BROKER_URL: RABBITMQ_URL,
      });
    }
  });

  it('times every task function out before the dispatcher gives up', () => {
    const dispatcher = functionResource(service.template, 'dispatcher').Properties
      .Timeout as number;

    for (const key of TASK_KEYS) {
      const timeout = functionResource(service.template, key).Properties.Timeout as number;
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

  it('maps the queue of the Amazon MQ broker to the dispatcher, with its secret, batch size and window', () => {
    const mappings = resourcesOfType(service.template, 'AWS::Lambda::EventSourceMapping');

    expect(mappings.map(([, resource]) => resource.Properties)).toEqual([
      {
        FunctionName: { 'Fn::GetAtt': [functionIds(service.template).get('dispatcher'), 'Arn'] },
        EventSourceArn: RABBITMQ_ARN,
        Queues: ['events'],
        SourceAccessConfigurations: [{ Type: 'BASIC_AUTH', URI: RABBITMQ_SECRET_ARN }],
        BatchSize: 25,
        MaximumBatchingWindowInSeconds: 5,
      },
    ]);
  });

  it('gives the dispatcher role what the event source needs, and no other role', () => {
    const found = iamStatements(service.template).filter(({ statement }) =>
      actions(statement).some((action) => /^(mq|secretsmanager|ec2):/.test(action)),
    );

    expect(new Set(found.map(({ holder }) => holder))).toEqual(
      new Set([roleOf(service.template, 'dispatcher')]),
    );
    expect(found.map(({ statement }) => [actions(statement)[0], statement.Resource])).toEqual([
      ['mq:DescribeBroker', RABBITMQ_ARN],
      ['secretsmanager:GetSecretValue', RABBITMQ_SECRET_ARN],
      ['ec2:CreateNetworkInterface', '*'],
    ]);
  });

  it('lets only the dispatcher role invoke functions, exactly the task functions', () => {
    expectOnlyInvoker(service.template, 'dispatcher');
  });

  it('reserves concurrency for no function, and schedules only the cron triggers', () => {
    expectNoReservedConcurrency(service.template);
    expect(scheduleRules(service.template).map(([key]) => key)).toEqual(CRON_KEYS);
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
    expect(Object.keys(Outputs)).toEqual(
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
    expect(Object.keys(Outputs)).toContain('ElastiCacheRedisUrl');
  });
});
