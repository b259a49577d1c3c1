/**
 * The demo packaged for production as an AWS user would deploy it (demo-variants.ts `vpcSecret`):
 * ElastiCache in a VPC, its AUTH token in Secrets Manager, the VPC endpoints of
 * infra/vpc-endpoints.yml merged. Checks that every function joins the VPC and its role may
 * create the network interfaces, that the functions get the secret's ARN and read only that
 * secret, that no artifact of the packaging holds the password, and that a stage other than
 * local/dev refuses the local default broker before bundling.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../src/demo/app.js';
import { taskFunctionKey } from '../../src/lambda/function-names.js';
import {
  type PackagedVariant,
  packageVariants,
  removePackagedVariants,
  VPC_ID,
  VPC_REDIS_HOST,
  VPC_REDIS_PASSWORD,
  VPC_SECRET_ARN,
  VPC_SECURITY_GROUP,
  VPC_SUBNETS,
} from '../helpers/demo-variants.js';
import { packageServiceCopy } from '../helpers/package-service-copy.js';
import {
  actionsOf,
  environmentOf,
  functionOf,
  functionsByKey,
  iamStatements,
  policiesOf,
  resourcesOfType,
  roleOf,
  unzip,
} from '../helpers/packaged-service.js';

const PREFIX = 'serverless-celery-prod-';
/** Every function: events-api, the demo's own, joins the VPC through vpc.functions. */
const ALL_KEYS = [
  ...registry.tasks.map((task) => taskFunctionKey(task.name)),
  ...registry.tasks.flatMap((task) =>
    task.schedule ? [`cron-${taskFunctionKey(task.name).slice(5)}`] : [],
  ),
  'events-api',
  'poller',
  'producer-http',
  'producer-invoke',
].sort();
/** The EC2 actions of AWSLambdaVPCAccessExecutionRole. */
const VPC_ACCESS = {
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
};

/** An interface endpoint's service name in the region of the stack. */
function endpointService(name: string): { 'Fn::Sub': string } {
  return { 'Fn::Sub': `com.amazonaws.\${AWS::Region}.${name}` };
}

/** Every file under `dir`, zips as their entries (`x.zip:entry`), with its text. */
async function artifactTexts(dir: string): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const name = path.relative(dir, file);
    if (file.endsWith('.zip')) {
      for (const [inner, data] of await unzip(file)) texts.set(`${name}:${inner}`, data.toString());
    } else {
      texts.set(name, await readFile(file, 'utf8'));
    }
  }
  return texts;
}

let service: PackagedVariant;
let refusal: { error: unknown; bundling: boolean };
let bundleError: unknown;

beforeAll(async () => {
  // The refusal comes before any bundling: it costs osls' start only.
  [service, refusal, bundleError] = await Promise.all([
    packageVariants(['vpcSecret']).then((variants) => variants.vpcSecret),
    packageRefused(),
    packageBrokenBundle(),
  ]);
}, 180_000);

afterAll(removePackagedVariants);

/**
 * `osls package --stage prod` with the demo's defaults (the local broker URL): its error, and
 * whether the handler files (written just before bundling) were.
 */
async function packageRefused(): Promise<{ error: unknown; bundling: boolean }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sc-refused-'));
  try {
    await packageServiceCopy(dir, { stage: 'prod' });
    return { error: undefined, bundling: true };
  } catch (error) {
    return { error, bundling: existsSync(path.join(dir, 'service', '.serverless-celery')) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `osls package` of a demo whose task module imports a file that does not exist, in code the
 * plugin's app loading never runs (so only esbuild meets it): its error.
 */
async function packageBrokenBundle(): Promise<unknown> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sc-broken-'));
  try {
    await packageServiceCopy(dir, {
      edit: (serviceDir) =>
        appendFile(
          path.join(serviceDir, 'src', 'demo', 'tasks.ts'),
          "\nexport const neverCalled = () => import('./does-not-exist.js');\n",
        ),
    });
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('osls package --stage prod, Redis in a VPC with its token in Secrets Manager', () => {
  it('has the same functions, named for stage prod', () => {
    expect([...functionsByKey(service).keys()].sort()).toEqual(ALL_KEYS);
    expect(service.prefix).toBe(PREFIX);
  });

  it('puts every function in the subnets and security group, the demo’s events-api too', () => {
    for (const key of functionsByKey(service).keys()) {
      expect(functionOf(service, key).Properties.VpcConfig, key).toEqual({
        SubnetIds: VPC_SUBNETS,
        SecurityGroupIds: [VPC_SECURITY_GROUP],
      });
    }
  });

  it('reserves concurrency for no function', () => {
    expect(JSON.stringify(service.template)).not.toContain('ReservedConcurrentExecutions');
  });

  it('gives every function the URL without credentials and the secret’s ARN', () => {
    for (const key of functionsByKey(service).keys()) {
      expect(environmentOf(service, key), key).toMatchObject({
        BROKER_URL: `rediss://${VPC_REDIS_HOST}:6379/0`,
        BROKER_SECRET_ARN: VPC_SECRET_ARN,
        FUNCTION_PREFIX: PREFIX,
        CELERY_EVENTS: 'true',
        POWERTOOLS_METRICS_NAMESPACE: 'Shop',
      });
    }
  });

  it('merges the alarms and the dashboard on the metrics namespace of its params', () => {
    const { Resources, Parameters } = service.template;
    const alarms = resourcesOfType(service.template, 'AWS::CloudWatch::Alarm');

    expect(Parameters).toMatchObject({ CeleryMetricsNamespace: { Default: 'Shop' } });
    expect(alarms).toHaveLength(3);
    expect(Resources.CeleryDashboard?.Type).toBe('AWS::CloudWatch::Dashboard');
  });

  it('lets every role manage the network interfaces and read exactly the broker’s secret', () => {
    const roles = new Set([...functionsByKey(service).keys()].map((key) => roleOf(service, key)));

    expect(roles).toEqual(new Set(['CeleryFunctionRole', 'CeleryPollerRole']));
    for (const role of roles) {
      const policies = policiesOf(service.template, role);
      expect(policies['vpc-network-interfaces'], role).toEqual([VPC_ACCESS]);
      expect(policies['read-broker-secret'], role).toEqual([
        { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: VPC_SECRET_ARN },
      ]);
    }
    const secretReads = iamStatements(service.template).filter(({ statement }) =>
      actionsOf(statement).some((action) => action.startsWith('secretsmanager:')),
    );
    expect(new Set(secretReads.map(({ statement }) => statement.Resource))).toEqual(
      new Set([VPC_SECRET_ARN]),
    );
  });

  it('merges the Lambda and Secrets Manager endpoints, reachable from the functions’ group', () => {
    const { Resources } = service.template;
    const endpoints = resourcesOfType(service.template, 'AWS::EC2::VPCEndpoint').map(
      ([id, resource]) => [id, resource.Properties.ServiceName, resource.Condition],
    );

    expect(endpoints).toEqual([
      ['LambdaVpcEndpoint', endpointService('lambda'), undefined],
      [
        'SecretsManagerVpcEndpoint',
        endpointService('secretsmanager'),
        'VpcEndpointHasSecretsManager',
      ],
      ['StsVpcEndpoint', endpointService('sts'), 'VpcEndpointHasSts'],
    ]);
    expect(Resources.VpcEndpointSecurityGroup?.Properties.SecurityGroupIngress).toEqual([
      {
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        SourceSecurityGroupId: { 'Fn::Select': [0, { Ref: 'VpcEndpointClientSecurityGroupIds' }] },
      },
    ]);
  });

  it('gives the endpoints’ parameters the VPC, subnets and group as defaults, and passes none', async () => {
    const { Parameters } = service.template;
    const state = JSON.parse(
      await readFile(path.join(service.dir, 'serverless-state.json'), 'utf8'),
    ) as { service: { provider: { stackParameters?: unknown } } };

    expect(Parameters).toMatchObject({
      VpcEndpointVpcId: { Type: 'AWS::EC2::VPC::Id', Default: VPC_ID },
      VpcEndpointSubnetIds: { Type: 'List<AWS::EC2::Subnet::Id>', Default: VPC_SUBNETS.join(',') },
      VpcEndpointClientSecurityGroupIds: {
        Type: 'List<AWS::EC2::SecurityGroup::Id>',
        Default: VPC_SECURITY_GROUP,
      },
    });
    // osls would pass stack parameters to the first deploy's template too, which has none.
    expect(state.service.provider.stackParameters).toBeUndefined();
  });

  it('leaves the password in no artifact: templates, state file, zips, handler files', async () => {
    const texts = new Map([
      ...(await artifactTexts(service.dir)),
      ...(await artifactTexts(path.join(service.serviceDir, '.serverless-celery'))),
    ]);
    const names = [...texts.keys()];

    // The grep reads what it should: the state file, both templates and every bundle.
    expect(names).toEqual(
      expect.arrayContaining([
        'serverless-state.json',
        'cloudformation-template-update-stack.json',
        'poller.zip:.serverless-celery/poller.mjs',
      ]),
    );
    expect(names.filter((name) => name.includes('.zip:'))).toHaveLength(ALL_KEYS.length);
    expect(texts.get('serverless-state.json')).toContain(VPC_REDIS_HOST);
    expect(texts.get('cloudformation-template-update-stack.json')).toContain(VPC_SECRET_ARN);
    expect(names.filter((name) => texts.get(name)?.includes(VPC_REDIS_PASSWORD))).toEqual([]);
  });

  it('refuses stage prod with the local default broker, naming the field, before bundling', () => {
    expect(refusal.error).toBeInstanceOf(Error);
    const message = (refusal.error as Error).message;
    expect(message).toContain(
      'serverless.yml: custom.celery.broker.url: is local, and stage prod is not one of local, dev',
    );
    expect(message).toContain('--param="brokerUrl=rediss://…"');
    expect(refusal.bundling).toBe(false);
  });
});

describe('osls package of a service whose bundle fails', () => {
  it('ends with esbuild’s error instead of waiting forever', () => {
    // The helper kills osls after its timeout and says so: a run that hangs (as with
    // serverless-esbuild's build contexts) fails here with "killed after".
    expect(bundleError).toBeInstanceOf(Error);
    const message = (bundleError as Error).message;
    expect(message).not.toMatch(/killed after/);
    expect(message).toContain('Could not resolve "./does-not-exist.js"');
  });
});
