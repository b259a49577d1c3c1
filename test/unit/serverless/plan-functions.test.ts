import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { createRegistry, type Registry, type RegistryInput } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import {
  type CeleryConfigInput,
  parseCeleryConfig,
} from '../../../src/serverless/celery-config.js';
import type { PlannedFunction } from '../../../src/serverless/function-definitions.js';
import {
  type CeleryPlan,
  type PlanContext,
  planFunctions,
} from '../../../src/serverless/plan-functions.js';

const CONTEXT: PlanContext = { service: 'reports', stage: 'dev' };
const AMAZON_MQ = { arn: 'arn:aws:mq:broker', secretArn: 'arn:aws:secretsmanager:secret' };

/** Two tasks on `reports`, `reports.purge` periodic; more or other tasks when given. */
function makeRegistry(
  tasks: RegistryInput['tasks'] = defaultTasks(),
  queues = ['reports'],
): Registry {
  return createRegistry({ tasks, queues: queues.map((name) => ({ name })) });
}

function defaultTasks(): RegistryInput['tasks'] {
  return [
    defineTask({ name: 'reports.send', queue: 'reports', timeLimit: 20 }, async () => 'sent'),
    defineTask(
      { name: 'reports.purge', queue: 'reports', cron: '0 3 * * 1-5', aliases: ['purge'] },
      async () => 'purged',
    ),
  ];
}

function plan(
  config: Partial<CeleryConfigInput> = {},
  options: { registry?: Registry; context?: PlanContext } = {},
): CeleryPlan {
  return planFunctions(
    options.registry ?? makeRegistry(),
    parseCeleryConfig({ app: './src/app.ts', ...config }),
    options.context ?? CONTEXT,
  );
}

function fn(planned: CeleryPlan, key: string): PlannedFunction {
  const found = planned.functions.find((candidate) => candidate.key === key);
  if (!found) throw new Error(`no function ${key} in ${planned.functions.map((f) => f.key)}`);
  return found;
}

function issuesOf(work: () => unknown): { path: string; message: string }[] {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return [...(error as InvalidConfigError).issues];
  }
  throw new Error('planFunctions accepted the app');
}

describe('planFunctions: registry → functions', () => {
  it('gives each task a function, each cron task a trigger, and Redis the poller and producers', () => {
    // Act
    const planned = plan();

    // Assess
    expect(planned.functions.map(({ key, kind, task }) => [key, kind, task])).toEqual([
      ['task-reports-send', 'task', 'reports.send'],
      ['task-reports-purge', 'task', 'reports.purge'],
      ['cron-reports-purge', 'cron', 'reports.purge'],
      ['poller', 'poller', undefined],
      ['producer-http', 'producer-http', undefined],
      ['producer-invoke', 'producer-invoke', undefined],
    ]);
    expect(planned.functions.map((f) => f.definition.name)).toEqual(
      planned.functions.map((f) => `reports-dev-${f.key}`),
    );
    expect(planned.taskFunctionNames).toEqual([
      'reports-dev-task-reports-send',
      'reports-dev-task-reports-purge',
    ]);
    expect(planned.environment).toEqual({ FUNCTION_PREFIX: 'reports-dev-' });
  });

  it('gives every function RESULT_BACKEND when custom.celery.resultBackend is set', () => {
    // Act
    const planned = plan({ resultBackend: 'redis://results:6379/2?global_keyprefix=app' });

    // Assess
    expect(planned.environment).toEqual({
      FUNCTION_PREFIX: 'reports-dev-',
      RESULT_BACKEND: 'redis://results:6379/2?global_keyprefix=app',
    });
  });

  it.each([
    [true, { CELERY_EVENTS: 'true' }],
    ['true', { CELERY_EVENTS: 'true' }],
    [false, {}],
  ] as const)(
    'gives every function CELERY_EVENTS when custom.celery.events is %j',
    (events, env) => {
      // Act
      const planned = plan({ events });

      // Assess
      expect(planned.environment).toEqual({ FUNCTION_PREFIX: 'reports-dev-', ...env });
    },
  );

  it('reads an empty resultBackend (a param left at its default) as unset', () => {
    // Act
    const planned = plan({ resultBackend: '' });

    // Assess
    expect(planned.environment).toEqual({ FUNCTION_PREFIX: 'reports-dev-' });
  });

  it('refuses a resultBackend that is not a Redis URL, naming the field', () => {
    // Act
    const planning = () => plan({ resultBackend: 'http://results:6379' });

    // Assess
    expect(planning).toThrow(
      /resultBackend: must start with redis:\/\/, rediss:\/\/, redis\+cluster:\/\/ or rediss\+cluster:\/\/, or be empty/,
    );
  });

  it('times a task function out 15 s after its timeLimit, and leaves the others to the provider', () => {
    // Act
    const planned = plan();

    // Assess
    expect(fn(planned, 'task-reports-send').definition).toEqual({
      name: 'reports-dev-task-reports-send',
      description: 'Runs reports.send (timeLimit 20 s)',
      role: 'CeleryFunctionRole',
      timeout: 35,
      logRetentionInDays: 30,
      events: [],
    });
    expect(fn(planned, 'task-reports-purge').definition.timeout).toBeUndefined();
  });

  it('triggers a cron task at its EventBridge translation, through a rule', () => {
    // Act
    const cron = fn(plan(), 'cron-reports-purge').definition;

    // Assess
    expect(cron).toMatchObject({
      description: 'Publishes reports.purge on its schedule (0 3 * * 1-5)',
      role: 'CeleryFunctionRole',
      timeout: 10,
      events: [{ schedule: { rate: ['cron(0 3 ? * MON-FRI *)'], method: 'eventBus' } }],
    });
  });

  it('runs the poller every minute for 900 s, holding messages a minute longer, never retried', () => {
    // Act
    const poller = fn(plan(), 'poller').definition;

    // Assess
    expect(poller).toEqual({
      name: 'reports-dev-poller',
      description: 'Drains the Redis queues and invokes the task functions',
      role: 'CeleryPollerRole',
      timeout: 900,
      maximumEventAge: 60,
      maximumRetryAttempts: 0,
      logRetentionInDays: 30,
      destinations: {
        onFailure: { type: 'sqs', arn: { 'Fn::GetAtt': ['CeleryScheduleFailureQueue', 'Arn'] } },
      },
      environment: { BROKER_VISIBILITY_TIMEOUT: '960' },
      events: [{ schedule: { rate: ['rate(1 minute)'], method: 'eventBus', enabled: true } }],
    });
  });

  it('routes POST /tasks/{name} to the HTTP producer, IAM-signed by default', () => {
    // Act
    const http = fn(plan(), 'producer-http').definition;
    const open = fn(plan({ producers: { http: { auth: 'none' } } }), 'producer-http').definition;

    // Assess
    expect(http.events).toEqual([
      { httpApi: { method: 'POST', path: '/tasks/{name}', authorizer: { type: 'aws_iam' } } },
    ]);
    expect(open.events).toEqual([{ httpApi: { method: 'POST', path: '/tasks/{name}' } }]);
  });

  it('adds GET /results/{id} to the HTTP producer only when the app opts in, with the same auth', () => {
    // Prepare
    const resultBackend = 'redis://results:6379/1';

    // Act
    const off = fn(plan({ resultBackend }), 'producer-http');
    const on = fn(plan({ resultBackend, producers: { http: { results: true } } }), 'producer-http');
    const open = fn(
      plan({ resultBackend, producers: { http: { results: 'true', auth: 'none' } } }),
      'producer-http',
    );

    // Assess
    expect(off.definition.events).toEqual([
      { httpApi: { method: 'POST', path: '/tasks/{name}', authorizer: { type: 'aws_iam' } } },
    ]);
    expect(off.handlerOptions).toBeUndefined();
    expect(on.definition.events).toEqual([
      { httpApi: { method: 'POST', path: '/tasks/{name}', authorizer: { type: 'aws_iam' } } },
      { httpApi: { method: 'GET', path: '/results/{id}', authorizer: { type: 'aws_iam' } } },
    ]);
    expect(on.handlerOptions).toEqual({ results: true });
    expect(on.definition.description).toBe(
      'POST /tasks/{name} publishes a task; GET /results/{id} reads its result',
    );
    expect(open.definition.events).toEqual([
      { httpApi: { method: 'POST', path: '/tasks/{name}' } },
      { httpApi: { method: 'GET', path: '/results/{id}' } },
    ]);
  });

  it('refuses the result route without a result backend, naming the field and why', () => {
    // Act
    const issues = issuesOf(() => plan({ producers: { http: { results: true } } }));

    // Assess
    expect(issues).toEqual([
      {
        path: 'custom.celery.producers.http.results',
        message:
          'needs custom.celery.resultBackend: GET /results/{id} reads results from it, and none are stored without it',
      },
    ]);
  });

  it('gives RabbitMQ the dispatcher, fed by one Amazon MQ event source per queue', () => {
    // Prepare
    const registry = makeRegistry(
      [...defaultTasks(), defineTask({ name: 'mail.send', queue: 'mail' }, async () => null)],
      ['reports', 'mail'],
    );

    // Act
    const planned = plan(
      { broker: { kind: 'rabbitmq', url: 'amqps://mq:5671', amazonMq: AMAZON_MQ } },
      { registry },
    );

    // Assess
    expect(planned.functions.map((f) => f.key)).not.toContain('poller');
    expect(fn(planned, 'dispatcher').definition).toMatchObject({
      role: 'CeleryDispatcherRole',
      timeout: 90,
      events: ['reports', 'mail'].map((queue) => ({
        rabbitmq: {
          arn: AMAZON_MQ.arn,
          basicAuthArn: AMAZON_MQ.secretArn,
          queue,
          batchSize: 100,
          maximumBatchingWindow: 1,
        },
      })),
    });
    // The event source's secret is the functions' too, by default.
    expect(planned.environment).toEqual({
      FUNCTION_PREFIX: 'reports-dev-',
      BROKER_URL: 'amqps://mq:5671',
      BROKER_SECRET_ARN: AMAZON_MQ.secretArn,
    });
  });

  it('gives the event source the vhost of the broker URL, and every function the broker’s secret', () => {
    // Act
    const planned = plan({
      broker: {
        kind: 'rabbitmq',
        url: 'amqps://mq:5671/orders',
        amazonMq: { ...AMAZON_MQ, batchSize: '25', maximumBatchingWindow: '5' },
      },
    });

    // Assess
    expect(fn(planned, 'dispatcher').definition.events).toEqual([
      {
        rabbitmq: {
          arn: AMAZON_MQ.arn,
          basicAuthArn: AMAZON_MQ.secretArn,
          queue: 'reports',
          batchSize: 25,
          maximumBatchingWindow: 5,
          virtualHost: 'orders',
        },
      },
    ]);
    expect(planned.brokerSecretArn).toBe(AMAZON_MQ.secretArn);
  });

  it('gives Redis functions BROKER_SECRET_ARN when the broker has a secret', () => {
    // Act
    const planned = plan({
      broker: {
        kind: 'redis',
        url: 'rediss://cache:6379/0',
        secretArn: 'arn:aws:secretsmanager:tok',
      },
    });

    // Assess
    expect(planned.environment).toEqual({
      FUNCTION_PREFIX: 'reports-dev-',
      BROKER_URL: 'rediss://cache:6379/0',
      BROKER_SECRET_ARN: 'arn:aws:secretsmanager:tok',
    });
  });

  it('gives the dispatcher no event source while the broker ARN is empty (local emulation)', () => {
    // Act
    const planned = plan({ broker: { kind: 'rabbitmq', amazonMq: { arn: '' } } });

    // Assess
    expect(fn(planned, 'dispatcher').definition.events).toEqual([]);
  });
});

describe('planFunctions: overrides', () => {
  it('applies defaults, then the kind, then the task; environments merge key by key', () => {
    // Act
    const planned = plan({
      defaults: { memorySize: 512, environment: { LOG_LEVEL: 'info', REGION: 'eu' } },
      cron: { memorySize: 128, lockUrl: 'redis://locks:6379/1' },
      tasks: {
        'reports.send': {
          memorySize: 1024,
          timeout: 50,
          reservedConcurrency: 5,
          vpc: { subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] },
          environment: { LOG_LEVEL: 'debug' },
        },
        'reports.purge': { cron: { timeout: 20 } },
      },
    });

    // Assess
    expect(fn(planned, 'task-reports-send').definition).toMatchObject({
      memorySize: 1024,
      timeout: 50,
      reservedConcurrency: 5,
      vpc: { subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] },
      environment: { LOG_LEVEL: 'debug', REGION: 'eu' },
    });
    expect(fn(planned, 'task-reports-purge').definition).toMatchObject({ memorySize: 512 });
    expect(fn(planned, 'cron-reports-purge').definition).toMatchObject({
      memorySize: 128,
      timeout: 20,
      environment: { CRON_LOCK_URL: 'redis://locks:6379/1', LOG_LEVEL: 'info', REGION: 'eu' },
    });
    expect(fn(planned, 'producer-http').definition).toMatchObject({ memorySize: 512 });
  });

  it('keeps the poller’s visibility timeout a minute beyond its own timeout', () => {
    // Act
    const poller = fn(plan({ poller: { timeout: 300 } }), 'poller').definition;

    // Assess
    expect(poller.timeout).toBe(300);
    expect(poller.environment).toEqual({ BROKER_VISIBILITY_TIMEOUT: '360' });
  });

  it('disables the poller’s rule, and drops producers, when asked', () => {
    // Act
    const planned = plan({
      poller: { scheduleEnabled: false },
      producers: { http: { enabled: false }, invoke: { enabled: 'false' } },
    });

    // Assess
    expect(fn(planned, 'poller').definition.events).toEqual([
      { schedule: { rate: ['rate(1 minute)'], method: 'eventBus', enabled: false } },
    ]);
    expect(planned.functions.map((f) => f.key)).not.toContain('producer-http');
    expect(planned.functions.map((f) => f.key)).not.toContain('producer-invoke');
  });
});

describe('planFunctions: errors', () => {
  it('refuses a task whose function name would exceed 64 characters, naming it', () => {
    // Prepare
    const registry = makeRegistry([
      defineTask(
        { name: 'reports.generate_quarterly_revenue_summary', queue: 'reports' },
        async () => null,
      ),
    ]);

    // Act
    const issues = issuesOf(() =>
      plan({}, { registry, context: { service: 'finance-reports', stage: 'production' } }),
    );

    // Assess
    expect(issues).toEqual([
      {
        path: 'task reports.generate_quarterly_revenue_summary',
        message:
          'function name finance-reports-production-task-reports-generate_quarterly_revenue_summary ' +
          'is 74 characters, Lambda allows 64: set custom.celery.functionPrefix to at most 17 ' +
          'characters (it is "finance-reports-production-", e.g. "fr-production-"), or shorten ' +
          'the task name',
      },
    ]);
  });

  it('names every generated function, and FUNCTION_PREFIX, after the functionPrefix it suggests', () => {
    // Prepare
    const registry = makeRegistry([
      defineTask(
        { name: 'reports.generate_quarterly_revenue_summary', queue: 'reports' },
        async () => null,
      ),
    ]);

    // Act
    const planned = plan(
      { functionPrefix: 'fr-production-' },
      { registry, context: { service: 'finance-reports', stage: 'production' } },
    );

    // Assess
    expect(planned.functions.map((f) => f.definition.name)).toEqual(
      planned.functions.map((f) => `fr-production-${f.key}`),
    );
    expect(planned.environment.FUNCTION_PREFIX).toBe('fr-production-');
    expect(planned.taskFunctionNames).toEqual([
      'fr-production-task-reports-generate_quarterly_revenue_summary',
    ]);
  });

  it('asks for a shorter task name when no prefix would do', () => {
    // Prepare
    const name = `reports.${'x'.repeat(60)}`;
    const registry = makeRegistry([defineTask({ name, queue: 'reports' }, async () => null)]);

    // Act
    const issues = issuesOf(() => plan({}, { registry }));

    // Assess
    expect(issues.map((issue) => [issue.path, issue.message.split(': ').at(-1)])).toEqual([
      [`task ${name}`, 'shorten the task name'],
    ]);
  });

  it('refuses a cron EventBridge cannot express, naming the task and the reason', () => {
    // Prepare
    const registry = makeRegistry([
      defineTask(
        { name: 'reports.monthly', queue: 'reports', cron: '0 9 1 * 1' },
        async () => null,
      ),
    ]);

    // Act
    const issues = issuesOf(() => plan({}, { registry }));

    // Assess
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe('task reports.monthly');
    expect(issues[0]?.message).toMatch(
      /^cron "0 9 1 \* 1" cannot run on EventBridge: both day-of-month and day-of-week/,
    );
  });

  it.each([
    ['a task the registry does not have', 'reports.sned', 'no task of that name in the registry'],
    ['an alias', 'purge', "purge is an alias of reports.purge: use the task's name"],
  ])('refuses overrides of %s', (_case, name, message) => {
    // Act
    const issues = issuesOf(() => plan({ tasks: { [name]: { memorySize: 256 } } }));

    // Assess
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe(`custom.celery.tasks.${name}`);
    expect(issues[0]?.message).toContain(message);
  });

  it.each([
    [
      'an override',
      { tasks: { 'reports.send': { timeout: 60 } } },
      {},
      'custom.celery.tasks.reports.send.timeout',
    ],
    ['the defaults', { defaults: { timeout: 75 } }, {}, 'custom.celery.defaults.timeout'],
    ['the provider', {}, { providerTimeout: 120 }, 'task reports.purge'],
  ])(
    'refuses a task timeout from %s that the poller would not wait for',
    (_case, config, context, path) => {
      // Act
      const issues = issuesOf(() => plan(config, { context: { ...CONTEXT, ...context } }));

      // Assess
      expect(issues.map((issue) => issue.path)).toContain(path);
      expect(issues.find((issue) => issue.path === path)?.message).toContain("the poller's 60 s");
    },
  );

  it('refuses a task timeout the dispatcher would not wait for', () => {
    // Act
    const issues = issuesOf(() =>
      plan({
        broker: { kind: 'rabbitmq', amazonMq: AMAZON_MQ },
        dispatcher: { timeout: 30 },
        tasks: { 'reports.send': { timeout: 40 } },
      }),
    );

    // Assess
    expect(issues).toEqual([
      {
        path: 'custom.celery.tasks.reports.send.timeout',
        message:
          "the function's timeout of 40 s must be under the dispatcher's 30 s (it waits for every invoke)",
      },
    ]);
  });

  it('refuses a poller too short to take anything, and an event source on an undeclared queue', () => {
    // Act
    const poller = issuesOf(() => plan({ poller: { timeout: 60 } }));
    const queue = issuesOf(() =>
      plan({ broker: { kind: 'rabbitmq', amazonMq: { ...AMAZON_MQ, queues: ['mail'] } } }),
    );

    // Assess
    expect(poller.map((issue) => issue.path)).toEqual(['custom.celery.poller.timeout']);
    expect(queue).toEqual([
      {
        path: 'custom.celery.broker.amazonMq.queues',
        message: 'queue mail is not declared by the registry',
      },
    ]);
  });
});

describe('planFunctions: log retention', () => {
  it.each([
    ['30 days by default', {}, undefined, 30],
    ['provider.logRetentionInDays, which they inherit', {}, 7, undefined],
    ['custom.celery.logRetentionInDays over the provider', { logRetentionInDays: '90' }, 7, 90],
    [
      'defaults.logRetentionInDays over both',
      { logRetentionInDays: 90, defaults: { logRetentionInDays: 14 } },
      7,
      14,
    ],
  ])('keeps the generated functions’ logs %s', (_case, config, provider, expected) => {
    // Act
    const planned = plan(config as Partial<CeleryConfigInput>, {
      context: { ...CONTEXT, providerLogRetentionInDays: provider },
    });

    // Assess
    for (const fn of planned.functions) {
      expect(fn.definition.logRetentionInDays, fn.key).toBe(expected);
    }
  });

  it('refuses a retention CloudWatch Logs does not offer, naming the field', () => {
    expect(() => parseCeleryConfig({ app: './app.ts', logRetentionInDays: 10 })).toThrow(
      /custom\.celery\.logRetentionInDays: must be one of CloudWatch Logs' retention periods: 1, 3, 5, 7, 14, 30/,
    );
  });
});
