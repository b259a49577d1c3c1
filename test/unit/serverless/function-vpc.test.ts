import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import {
  type CeleryConfigInput,
  parseCeleryConfig,
} from '../../../src/serverless/celery-config.js';
import { runsInVpc } from '../../../src/serverless/function-vpc.js';
import { planFunctions } from '../../../src/serverless/plan-functions.js';

const registry = createRegistry({
  tasks: [
    defineTask({ name: 'reports.send', queue: 'reports' }, async () => null),
    defineTask({ name: 'reports.charge', queue: 'reports', atMostOnce: true }, async () => null),
    defineTask({ name: 'reports.purge', queue: 'reports', cron: '0 3 * * *' }, async () => null),
  ],
  queues: [{ name: 'reports' }],
});
const VPC = { subnetIds: ['subnet-1', 'subnet-2'], securityGroupIds: ['sg-1'] };

/** Function key → its `vpc`, for a service with `custom.celery` = `config`. */
function vpcs(config: Partial<CeleryConfigInput>): Record<string, unknown> {
  const plan = planFunctions(registry, parseCeleryConfig({ app: './app.ts', ...config }), {
    service: 'reports',
    stage: 'dev',
  });
  return Object.fromEntries(plan.functions.map((fn) => [fn.key, fn.definition.vpc]));
}

describe('custom.celery.vpc', () => {
  it('puts every function that connects to the broker in it, and the tasks that record runs', () => {
    // Act
    const found = vpcs({ vpc: { subnetIds: 'subnet-1, subnet-2', securityGroupIds: 'sg-1' } });

    // Assess
    expect(found).toEqual({
      'task-reports-send': undefined,
      'task-reports-charge': VPC,
      'task-reports-purge': undefined,
      'cron-reports-purge': VPC,
      poller: VPC,
      'producer-http': VPC,
      'producer-invoke': VPC,
    });
  });

  it.each([
    ['all', ['task-reports-send', 'task-reports-charge', 'task-reports-purge']],
    ['none', []],
  ] as const)('puts the task functions of tasks: %s in it', (tasks, expected) => {
    // Act
    const found = vpcs({ vpc: { ...VPC, tasks } });

    // Assess
    const inVpc = Object.entries(found)
      .filter(([key, vpc]) => key.startsWith('task-') && vpc !== undefined)
      .map(([key]) => key);
    expect(inVpc).toEqual(expected);
  });

  it.each([
    ['a YAML list', ['subnet-1', 'subnet-2']],
    ['a --param string', 'subnet-1,subnet-2'],
    ['a --param string the framework’s validation wrapped in a list', ['subnet-1,subnet-2']],
  ])('reads the subnets from %s', (_case, subnetIds) => {
    expect(vpcs({ vpc: { subnetIds, securityGroupIds: 'sg-1' } }).poller).toEqual(VPC);
  });

  it('puts the dispatcher in it on RabbitMQ', () => {
    // Act
    const found = vpcs({
      broker: { kind: 'rabbitmq', amazonMq: { arn: 'arn:mq', secretArn: 'arn:secret' } },
      vpc: VPC,
    });

    // Assess
    expect(found.dispatcher).toEqual(VPC);
  });

  it('lets an override replace the VPC, or opt out with vpc: false', () => {
    // Act
    const found = vpcs({
      vpc: VPC,
      tasks: { 'reports.charge': { vpc: false } },
      producers: { invoke: { vpc: { subnetIds: ['subnet-9'], securityGroupIds: ['sg-9'] } } },
    });

    // Assess
    expect(found['task-reports-charge']).toBe(false);
    expect(found['producer-invoke']).toEqual({
      subnetIds: ['subnet-9'],
      securityGroupIds: ['sg-9'],
    });
  });

  it.each([
    ['no vpc', {}],
    ['both lists empty (the params left at "")', { vpc: { subnetIds: '', securityGroupIds: '' } }],
  ])('adds no VPC with %s', (_case, config) => {
    expect(Object.values(vpcs(config)).every((vpc) => vpc === undefined)).toBe(true);
  });

  it.each([
    [{ subnetIds: 'subnet-1' }, 'custom.celery.vpc.securityGroupIds', 'required with subnetIds'],
    [
      { securityGroupIds: ['sg-1'] },
      'custom.celery.vpc.subnetIds',
      'required with securityGroupIds',
    ],
    [
      { ...VPC, securityGroupIds: 'sg-1,sg-2,sg-3,sg-4,sg-5,sg-6' },
      'custom.celery.vpc.securityGroupIds',
      'at most 5',
    ],
    [{ ...VPC, tasks: 'some' }, 'custom.celery.vpc.tasks', ''],
  ])('refuses %j, naming the field', (vpc, path, message) => {
    // Act
    const refuse = () => parseCeleryConfig({ app: './app.ts', vpc });

    // Assess
    expect(refuse).toThrow(new RegExp(`${path.replaceAll('.', '\\.')}: [^\\n]*${message}`));
  });
});

describe('runsInVpc', () => {
  it.each([
    [VPC, undefined, true],
    [undefined, VPC, true],
    [false, VPC, false],
    [null, VPC, false],
    [{ subnetIds: ['s'] }, { securityGroupIds: ['sg'] }, true],
    [undefined, { subnetIds: ['s'] }, false],
  ])('decides %j under provider.vpc %j: %s', (own, provider, expected) => {
    expect(runsInVpc(own, provider)).toBe(expected);
  });
});
