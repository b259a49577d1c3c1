/**
 * The IAM roles of the generated functions, one per kind of access, each granting only what its
 * functions do. Derived from the planned functions' final definitions (after overrides), so an
 * override that adds a VPC or an event source gets its permissions here, in one place:
 *
 * - every role writes to the log groups the framework creates for the service's functions;
 * - the poller's and dispatcher's roles invoke exactly the task functions, by name;
 * - the dispatcher's role has what the Amazon MQ event source needs, when it has one
 *   (docs.aws.amazon.com/lambda/latest/dg/with-mq.html), inline so that the event source
 *   mapping, which depends on the role, is created after it;
 * - a role whose functions run in a VPC (their own `vpc`, or `provider.vpc`) manages their
 *   network interfaces (else CreateFunction fails: "The provided execution role does not have
 *   permissions to call CreateNetworkInterface on EC2"); your own functions count for
 *   {@link ROLE_IDS.function} when they run with it;
 * - with `broker.secretArn`, every role reads exactly that secret: the poller and dispatcher
 *   drain the broker, and the function role's producers and cron triggers publish (its task
 *   functions share the role, and so may read it too);
 * - a role whose functions have an on-failure destination may send to it.
 */
import { ROLE_IDS } from './function-definitions.js';
import { runsInVpc } from './function-vpc.js';
import type { CeleryPlan } from './plan-functions.js';
import type { CfnResource, FunctionDefinition } from './serverless-types.js';

/** An IAM policy statement. */
interface Statement {
  readonly Effect: 'Allow';
  readonly Action: string | readonly string[];
  readonly Resource: unknown;
}

const LAMBDA_TRUST = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
  ],
} as const;

/**
 * What Lambda needs to attach a function to a VPC: the EC2 actions of the managed policy
 * AWSLambdaVPCAccessExecutionRole (version 3, January 2024; its logs actions are in write-logs).
 * `Resource: '*'` as there: Describe* actions take no resource, and the interfaces do not exist
 * before Lambda creates them.
 */
const VPC_ACCESS: Statement = {
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

/** An ARN of this account and region, as CloudFormation's `Fn::Sub`. */
function accountArn(service: string, resource: string): { 'Fn::Sub': string } {
  return {
    'Fn::Sub': `arn:\${AWS::Partition}:${service}:\${AWS::Region}:\${AWS::AccountId}:${resource}`,
  };
}

/**
 * The roles, by logical id: always {@link ROLE_IDS.function} (your own functions may use it with
 * `provider.iam.role`), the poller's or dispatcher's when planned.
 *
 * @param options.providerVpc - `provider.vpc` as written (functions inherit it)
 * @param options.ownFunctions - the service's other functions that run with
 *   {@link ROLE_IDS.function}, as finally defined
 */
export function celeryRoles(
  plan: CeleryPlan,
  options: {
    readonly providerVpc?: unknown;
    readonly ownFunctions?: readonly FunctionDefinition[];
  },
): Record<string, CfnResource> {
  // Your own functions keep the framework's names, so a custom prefix adds a log group pattern.
  const prefixes = [...new Set([plan.prefix, plan.frameworkPrefix])];
  const writeLogs: Statement = {
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: distinct(
      prefixes.map((prefix) => accountArn('logs', `log-group:/aws/lambda/${prefix}*:*`)),
    ),
  };
  const readSecret: Statement | undefined =
    plan.brokerSecretArn === undefined
      ? undefined
      : {
          Effect: 'Allow',
          Action: 'secretsmanager:GetSecretValue',
          Resource: plan.brokerSecretArn,
        };
  const invokeTasks: Statement = {
    Effect: 'Allow',
    Action: 'lambda:InvokeFunction',
    // Sorted: a module namespace's task order depends on the loader, the template should not.
    Resource: [...plan.taskFunctionNames]
      .sort()
      .map((name) => accountArn('lambda', `function:${name}`)),
  };
  const canInvoke = plan.taskFunctionNames.length > 0;
  const roles: Record<string, CfnResource> = {};
  for (const [id, kind] of [
    [ROLE_IDS.function, undefined],
    [ROLE_IDS.poller, 'poller'],
    [ROLE_IDS.dispatcher, 'dispatcher'],
  ] as const) {
    const planned = plan.functions.filter((fn) => fn.definition.role === id);
    if (kind && planned.length === 0) continue;
    const members = [
      ...planned.map((fn) => fn.definition),
      ...(kind ? [] : (options.ownFunctions ?? [])),
    ];
    const policies: unknown[] = kind
      ? [policy('write-logs-invoke-tasks', [writeLogs, ...(canInvoke ? [invokeTasks] : [])])]
      : [policy('write-logs', [writeLogs])];
    const eventSource = amazonMqStatements(members);
    if (eventSource.length > 0) policies.push(policy('amazon-mq-event-source', eventSource));
    if (readSecret) policies.push(policy('read-broker-secret', [readSecret]));
    const failures = failureDestinations(members);
    if (failures) policies.push(policy('send-failed-events', [failures]));
    if (members.some((fn) => runsInVpc(fn.vpc, options.providerVpc))) {
      policies.push(policy('vpc-network-interfaces', [VPC_ACCESS]));
    }
    roles[id] = {
      Type: 'AWS::IAM::Role',
      Properties: { AssumeRolePolicyDocument: LAMBDA_TRUST, Policies: policies },
    };
  }
  return roles;
}

function policy(name: string, statements: readonly Statement[]) {
  return { PolicyName: name, PolicyDocument: { Version: '2012-10-17', Statement: statements } };
}

/** Sending to the on-failure destinations of `functions` (SQS queues), if they have any. */
function failureDestinations(functions: readonly FunctionDefinition[]): Statement | undefined {
  const queues = functions.flatMap((fn) => {
    const onFailure = (fn.destinations as { onFailure?: { type?: string; arn?: unknown } })
      ?.onFailure;
    return onFailure?.type === 'sqs' ? [onFailure.arn] : [];
  });
  if (queues.length === 0) return undefined;
  return { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: distinct(queues) };
}

/** The event source's needs, for the `rabbitmq` events of `functions`: broker, secret, VPC. */
function amazonMqStatements(functions: readonly FunctionDefinition[]): Statement[] {
  const sources = functions.flatMap((fn) =>
    (fn.events ?? []).flatMap((event) => {
      const rabbitmq = (event as { rabbitmq?: { arn: unknown; basicAuthArn: unknown } }).rabbitmq;
      return rabbitmq ? [rabbitmq] : [];
    }),
  );
  if (sources.length === 0) return [];
  return [
    { Effect: 'Allow', Action: 'mq:DescribeBroker', Resource: distinct(sources.map((s) => s.arn)) },
    {
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: distinct(sources.map((s) => s.basicAuthArn)),
    },
    {
      Effect: 'Allow',
      Action: [
        'ec2:CreateNetworkInterface',
        'ec2:DeleteNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeSecurityGroups',
        'ec2:DescribeSubnets',
        'ec2:DescribeVpcs',
      ],
      Resource: '*',
    },
  ];
}

/** One value as itself, several as a list (ARNs may be intrinsic functions: compared as JSON). */
function distinct(values: readonly unknown[]): unknown {
  const unique = [...new Map(values.map((value) => [JSON.stringify(value), value])).values()];
  return unique.length === 1 ? unique[0] : unique;
}
