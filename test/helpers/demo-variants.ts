/**
 * The demo service's deployment variants that CI packages (`osls package`, offline) and checks:
 * Redis with the defaults, RabbitMQ on Amazon MQ with the infra/ fragments, and a production
 * stage in a VPC whose broker credentials are in Secrets Manager. Each is packaged in a copy of
 * the service of its own (package-service-copy.ts), so the variants of one test file package in
 * parallel; the copies are removed by {@link removePackagedVariants}.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type PackagedCopy, packageServiceCopy } from './package-service-copy.js';

/** The Amazon MQ broker of the RabbitMQ variant. */
export const RABBITMQ_ARN =
  'arn:aws:mq:us-east-1:123456789012:broker:celery:b-0f5f3b4e-1111-2222-3333-444455556666';
/** Its user `{"username", "password"}`, the event source's and the functions'. */
export const RABBITMQ_SECRET_ARN =
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:celery-AbCdEf';
/** Its endpoint, without credentials, on the vhost `orders`. */
export const RABBITMQ_URL =
  'amqps://b-0f5f3b4e-1111-2222-3333-444455556666.mq.us-east-1.amazonaws.com:5671/orders';

/** The ElastiCache endpoint of the VPC variant, without credentials. */
export const VPC_REDIS_HOST = 'celery.abc123.ng.0001.use1.cache.amazonaws.com';
/** Its AUTH token's secret. */
export const VPC_SECRET_ARN =
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:celery-redis-token-GhIjKl';
/**
 * The AUTH token that secret holds: given to nothing the packaging reads, so it must appear in
 * no artifact. A test asserts that, which proves the grep, not the plugin, if ever it appears.
 */
export const VPC_REDIS_PASSWORD = 'Tq7vXr2Lm9pWz4Ks8Nd3';
export const VPC_SUBNETS = ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002'];
export const VPC_SECURITY_GROUP = 'sg-0a1b2c3d4e5f60009';
export const VPC_ID = 'vpc-0a1b2c3d4e5f60000';

/** A variant: its stage and `--param`s. */
export interface DemoVariant {
  readonly stage: string;
  readonly params: Readonly<Record<string, string>>;
}

/** The variants, by name. */
export const DEMO_VARIANTS = {
  /** serverless.yml's defaults: Redis on the local default URL, stage dev (a warning only). */
  redis: { stage: 'dev', params: {} },
  /** RabbitMQ on Amazon MQ, every infra/ fragment merged but the VPC endpoints; /events open. */
  rabbitmq: {
    stage: 'dev',
    params: {
      broker: 'rabbitmq',
      brokerUrl: RABBITMQ_URL,
      rabbitmqArn: RABBITMQ_ARN,
      rabbitmqSecretArn: RABBITMQ_SECRET_ARN,
      batchSize: '25',
      maximumBatchingWindow: '5',
      logRetentionDays: '14',
      eventsAuth: 'none',
      amazonMq: 'true',
      elastiCache: 'true',
    },
  },
  /**
   * Production: ElastiCache in a VPC, its token in Secrets Manager, the VPC endpoints, alarms and
   * the dashboard merged, Celery events on.
   */
  vpcSecret: {
    stage: 'prod',
    params: {
      brokerUrl: `rediss://${VPC_REDIS_HOST}:6379/0`,
      storeUrl: `rediss://${VPC_REDIS_HOST}:6379/1`,
      brokerSecretArn: VPC_SECRET_ARN,
      subnetIds: VPC_SUBNETS.join(','),
      securityGroupIds: VPC_SECURITY_GROUP,
      vpcId: VPC_ID,
      vpcEndpoints: 'true',
      elastiCache: 'true',
      alarms: 'true',
      metricsNamespace: 'Shop',
      celeryEvents: 'true',
    },
  },
} as const satisfies Record<string, DemoVariant>;

/** A variant's name. */
export type DemoVariantName = keyof typeof DEMO_VARIANTS;

/** A packaged variant; its service copy is `service` beside the package folder. */
export interface PackagedVariant extends PackagedCopy {
  /** The copy of the service osls packaged (`.serverless-celery/`, `.esbuild/` inside). */
  readonly serviceDir: string;
}

const workDirs: string[] = [];

/**
 * Packages `names` in parallel, each in a temporary copy of its own.
 *
 * @throws Error with osls' output when a packaging fails
 */
export async function packageVariants<Name extends DemoVariantName>(
  names: readonly Name[],
): Promise<Record<Name, PackagedVariant>> {
  const packaged = await Promise.all(
    names.map(async (name): Promise<[Name, PackagedVariant]> => {
      const into = await mkdtemp(path.join(tmpdir(), `sc-${name}-`));
      workDirs.push(into);
      const { stage, params } = DEMO_VARIANTS[name] as DemoVariant;
      const copy = await packageServiceCopy(into, { stage, params });
      return [name, { ...copy, serviceDir: path.join(into, 'service') }];
    }),
  );
  return Object.fromEntries(packaged) as Record<Name, PackagedVariant>;
}

/** Removes every copy {@link packageVariants} made. */
export async function removePackagedVariants(): Promise<void> {
  await Promise.all(workDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
