import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import {
  type CeleryConfigInput,
  parseCeleryConfig,
} from '../../../src/serverless/celery-config.js';
import { celeryRoles } from '../../../src/serverless/celery-roles.js';
import { type CeleryPlan, planFunctions } from '../../../src/serverless/plan-functions.js';
import type { CfnResource } from '../../../src/serverless/serverless-types.js';

const registry = createRegistry({
  tasks: [
    defineTask({ name: 'reports.send', queue: 'reports' }, async () => null),
    defineTask({ name: 'reports.purge', queue: 'reports', cron: '0 3 * * *' }, async () => null),
  ],
  queues: [{ name: 'reports' }],
});
const AMAZON_MQ = { arn: 'arn:aws:mq:broker', secretArn: 'arn:aws:secretsmanager:secret' };

function plan(config: Partial<CeleryConfigInput> = {}): CeleryPlan {
  return planFunctions(registry, parseCeleryConfig({ app: './src/app.ts', ...config }), {
    service: 'reports',
    stage: 'dev',
  });
}

interface Policy {
  readonly PolicyName: string;
  readonly PolicyDocument: { readonly Statement: readonly Record<string, unknown>[] };
}

function policies(role: CfnResource | undefined): Record<string, unknown[]> {
  const list = (role?.Properties?.Policies ?? []) as Policy[];
  return Object.fromEntries(list.map((p) => [p.PolicyName, [...p.PolicyDocument.Statement]]));
}

const sub = (text: string) => ({ 'Fn::Sub': text });
const WRITE_LOGS = {
  Effect: 'Allow',
  Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
  Resource: sub(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub syntax
    'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/reports-dev-*:*',
  ),
};
const INVOKE_TASKS = {
  Effect: 'Allow',
  Action: 'lambda:InvokeFunction',
  Resource: ['reports-dev-task-reports-purge', 'reports-dev-task-reports-send'].map((name) =>
    sub(`arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${name}`),
  ),
};

/** The on-failure destination of the cron triggers and the poller (schedule-failures.ts). */
const SEND_FAILED = {
  Effect: 'Allow',
  Action: 'sqs:SendMessage',
  Resource: { 'Fn::GetAtt': ['CeleryScheduleFailureQueue', 'Arn'] },
};
const VPC = { subnetIds: 'subnet-1,subnet-2', securityGroupIds: 'sg-1' };

/** The roles that hold a policy of `name`. */
function rolesWith(roles: Record<string, CfnResource>, name: string): string[] {
  return Object.entries(roles)
    .filter(([, role]) => name in policies(role))
    .map(([id]) => id);
}

describe('celeryRoles', () => {
  it('lets the poller invoke exactly the task functions, and every role write its logs', () => {
    // Act
    const roles = celeryRoles(plan(), {});

    // Assess
    expect(Object.keys(roles)).toEqual(['CeleryFunctionRole', 'CeleryPollerRole']);
    expect(policies(roles.CeleryFunctionRole)).toEqual({
      'write-logs': [WRITE_LOGS],
      'send-failed-events': [SEND_FAILED],
    });
    expect(policies(roles.CeleryPollerRole)).toEqual({
      'write-logs-invoke-tasks': [WRITE_LOGS, INVOKE_TASKS],
      'send-failed-events': [SEND_FAILED],
    });
    expect(roles.CeleryPollerRole?.Properties?.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ],
    });
  });

  it('gives the dispatcher what its Amazon MQ event source needs, and no poller role', () => {
    // Act
    const roles = celeryRoles(plan({ broker: { kind: 'rabbitmq', amazonMq: AMAZON_MQ } }), {});

    // Assess
    expect(Object.keys(roles)).toEqual(['CeleryFunctionRole', 'CeleryDispatcherRole']);
    const dispatcher = policies(roles.CeleryDispatcherRole);
    expect(dispatcher['write-logs-invoke-tasks']).toEqual([WRITE_LOGS, INVOKE_TASKS]);
    expect(dispatcher['amazon-mq-event-source']?.slice(0, 2)).toEqual([
      { Effect: 'Allow', Action: 'mq:DescribeBroker', Resource: AMAZON_MQ.arn },
      { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: AMAZON_MQ.secretArn },
    ]);
  });

  it('gives the dispatcher no event source permissions while it has no event source', () => {
    // Act
    const roles = celeryRoles(plan({ broker: { kind: 'rabbitmq' } }), {});

    // Assess
    expect(Object.keys(policies(roles.CeleryDispatcherRole))).toEqual(['write-logs-invoke-tasks']);
  });

  it.each([
    [
      'a task in a VPC',
      { tasks: { 'reports.send': { vpc: { subnetIds: ['s-1'], securityGroupIds: ['sg-1'] } } } },
      undefined,
      ['CeleryFunctionRole'],
    ],
    [
      'provider.vpc',
      {},
      { subnetIds: ['s-1'], securityGroupIds: ['sg-1'] },
      ['CeleryFunctionRole', 'CeleryPollerRole'],
    ],
    ['an incomplete provider.vpc', {}, { subnetIds: ['s-1'] }, []],
  ])(
    'lets the roles of functions in a VPC manage network interfaces: %s',
    (_case, config, providerVpc, expected) => {
      // Act
      const roles = celeryRoles(plan(config), { providerVpc });

      // Assess
      const withVpc = Object.entries(roles)
        .filter(([, role]) => 'vpc-network-interfaces' in policies(role))
        .map(([id]) => id);
      expect(withVpc).toEqual(expected);
    },
  );

  it('gives no role a failure queue to send to when scheduleFailureQueue is off', () => {
    // Act
    const roles = celeryRoles(plan({ scheduleFailureQueue: 'false' }), {});

    // Assess
    expect(rolesWith(roles, 'send-failed-events')).toEqual([]);
  });

  it.each([
    ['custom.celery.vpc', { vpc: VPC }, ['CeleryFunctionRole', 'CeleryPollerRole']],
    [
      'custom.celery.vpc with its lists empty (params left at "")',
      { vpc: { subnetIds: '', securityGroupIds: '' } },
      [],
    ],
  ])(
    'lets the roles of functions in the broker’s VPC manage network interfaces: %s',
    (_case, config, expected) => {
      // Act
      const roles = celeryRoles(plan(config), {});

      // Assess
      expect(rolesWith(roles, 'vpc-network-interfaces')).toEqual(expected);
      expect(policies(roles.CeleryPollerRole)['vpc-network-interfaces']).toEqual(
        expected.length === 0
          ? undefined
          : [
              {
                Effect: 'Allow',
                Action: [
                  'ec2:CreateNetworkInterface',
                  'ec2:DescribeNetworkInterfaces',
                  'ec2:DescribeSubnets',
                  'ec2:DeleteNetworkInterface',
                  'ec2:AssignPrivateIpAddresses',
                  'ec2:UnassignPrivateIpAddresses',
                ],
                Resource: '*',
              },
            ],
      );
    },
  );

  it('counts your own functions on the function role: one in a VPC gives it the ENI permissions', () => {
    // Prepare
    const own = [
      { handler: 'functions/api.handler', vpc: { subnetIds: ['s-1'], securityGroupIds: ['sg-1'] } },
    ];

    // Act
    const roles = celeryRoles(
      plan({ producers: { http: { enabled: false }, invoke: { enabled: false } } }),
      {
        ownFunctions: own,
      },
    );

    // Assess
    expect(rolesWith(roles, 'vpc-network-interfaces')).toEqual(['CeleryFunctionRole']);
  });

  it.each([
    [
      'Redis, broker.secretArn',
      { broker: { kind: 'redis', secretArn: 'arn:redis-token' } },
      'arn:redis-token',
      ['CeleryFunctionRole', 'CeleryPollerRole'],
    ],
    [
      'RabbitMQ, the event source’s secret by default',
      { broker: { kind: 'rabbitmq', amazonMq: AMAZON_MQ } },
      AMAZON_MQ.secretArn,
      ['CeleryFunctionRole', 'CeleryDispatcherRole'],
    ],
    [
      'RabbitMQ, a secret of its own',
      { broker: { kind: 'rabbitmq', secretArn: 'arn:app-user', amazonMq: AMAZON_MQ } },
      'arn:app-user',
      ['CeleryFunctionRole', 'CeleryDispatcherRole'],
    ],
  ] as const)(
    'lets every role read the broker’s secret, and only it: %s',
    (_case, config, secret, holders) => {
      // Act
      const roles = celeryRoles(plan(config as Partial<CeleryConfigInput>), {});

      // Assess
      expect(rolesWith(roles, 'read-broker-secret')).toEqual(holders);
      for (const id of holders) {
        expect(policies(roles[id])['read-broker-secret'], id).toEqual([
          { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secret },
        ]);
      }
    },
  );

  it('lets the roles write the logs of both prefixes when functionPrefix differs from the framework’s', () => {
    // Act
    const roles = celeryRoles(plan({ functionPrefix: 'rp-' }), {});

    // Assess
    expect(policies(roles.CeleryFunctionRole)['write-logs']?.[0]).toMatchObject({
      Resource: ['rp-', 'reports-dev-'].map((prefix) =>
        sub(
          `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${prefix}*:*`,
        ),
      ),
    });
  });
});
