/**
 * `custom.celery` in `serverless.yml`: the plugin's whole configuration, one zod schema. The
 * framework validates the same schema (as JSON Schema, {@link celeryConfigJsonSchema}) before any
 * hook runs; the plugin parses it again at package time for its defaults and for errors that
 * name the field. Every object is strict, so a misspelt option fails instead of being ignored.
 *
 * Numbers and booleans are accepted as strings too: `${param:…}` given on the command line
 * (`--param=batchSize=25`) arrives as a string.
 *
 * Overrides of a generated function are the framework's own function properties, merged in this
 * order (later wins): `defaults`, the plugin's own settings for that kind of function (the
 * poller's 900 s timeout, a task's timeLimit + 15 s), the kind's section (`poller`, `dispatcher`,
 * `cron`, `producers.http`, `producers.invoke`), then `tasks.<name>` for a task's function
 * (`tasks.<name>.cron` for its cron trigger). A setting every generated function needs (a VPC,
 * log retention) belongs in `defaults`; anything the plugin leaves unset is the provider's.
 */
import * as z from 'zod/mini';
import { InvalidConfigError } from '../core/errors.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';

/** Where the configuration sits in `serverless.yml`; every error path starts with it. */
export const CONFIG_PATH = 'custom.celery';

/** A whole number written in YAML, or passed as a `--param` (a string). */
function wholeNumber(min: number, max: number) {
  return z.pipe(
    z.pipe(
      z.union([z.int(), z.string().check(z.regex(/^\d+$/, 'must be a whole number'))]),
      z.transform((value: number | string) => Number(value)),
    ),
    z.int().check(z.gte(min), z.lte(max)),
  );
}

/** `true`/`false`, or their strings (from a `--param`). */
const flag = z.pipe(
  z.union([z.boolean(), z.enum(['true', 'false'])]),
  z.transform((value: boolean | 'true' | 'false') => value === true || value === 'true'),
);

/** A CloudFormation intrinsic function (`Ref`, `Fn::GetAtt`, `Fn::ImportValue`…). */
const intrinsic = z.record(z.string(), z.unknown());

/** A literal value or an intrinsic function. */
const cfnValue = z.union([z.string().check(z.minLength(1)), intrinsic]);

/** Overrides any generated function takes: the framework's function properties, verbatim. */
const sharedOverrides = {
  memorySize: z.optional(wholeNumber(128, 10_240)),
  timeout: z.optional(wholeNumber(1, 900)),
  description: z.optional(z.string()),
  architecture: z.optional(z.enum(['x86_64', 'arm64'])),
  ephemeralStorageSize: z.optional(wholeNumber(512, 10_240)),
  environment: z.optional(z.record(z.string(), z.union([z.string(), intrinsic]))),
  vpc: z.optional(
    z.strictObject({
      securityGroupIds: z.array(cfnValue).check(z.minLength(1)),
      subnetIds: z.array(cfnValue).check(z.minLength(1)),
    }),
  ),
  layers: z.optional(z.array(cfnValue)),
  tags: z.optional(z.record(z.string(), z.string())),
  logRetentionInDays: z.optional(wholeNumber(1, 3653)),
  maximumEventAge: z.optional(wholeNumber(60, 21_600)),
  maximumRetryAttempts: z.optional(wholeNumber(0, 2)),
};

/** Overrides of one function, including the concurrency settings `defaults` cannot give. */
const functionOverrides = {
  ...sharedOverrides,
  reservedConcurrency: z.optional(wholeNumber(0, 1_000_000)),
  provisionedConcurrency: z.optional(wholeNumber(0, 1_000_000)),
};

/** Overrides of one generated function. */
export const functionOverridesSchema = z.strictObject(functionOverrides);
/** Overrides of one generated function, after parsing. */
export type FunctionOverrides = z.output<typeof functionOverridesSchema>;

/** `tasks.<task name>`: the task's function, and `cron` for its cron trigger. */
export const taskOverridesSchema = z.strictObject({
  ...functionOverrides,
  cron: z.optional(functionOverridesSchema),
});

/** `poller`: the Redis poller. */
const pollerSchema = z.strictObject({
  ...functionOverrides,
  reservedConcurrency: z.optional(
    z.never({
      error:
        'the poller reserves no concurrency: pollers hand over to each other (drain-relay.ts), ' +
        'and reserving 1 throttles every tick that comes during a drain',
    }),
  ),
  /** Whether its schedule runs: `false` keeps the function but disables the rule. */
  scheduleEnabled: z._default(flag, true),
});

/** `producers.http`: `POST /tasks/{name}`. */
const httpProducerSchema = z.strictObject({
  ...functionOverrides,
  enabled: z._default(flag, true),
  path: z._default(
    z.string().check(z.regex(/^\/.*\{name\}/, 'must start with / and hold {name}')),
    '/tasks/{name}',
  ),
  /** `iam`: callers sign requests (SigV4). `none`: anyone who can reach the API publishes. */
  auth: z._default(z.enum(['iam', 'none']), 'iam'),
});

/** `producers.invoke`: direct invoke `{ task, args, kwargs }`. */
const invokeProducerSchema = z.strictObject({
  ...functionOverrides,
  enabled: z._default(flag, true),
});

/** The Amazon MQ event source of the dispatcher (`rabbitmq` events). */
const amazonMqSchema = z.strictObject({
  /** The broker's ARN. Empty: no event source (serverless-offline feeds the dispatcher itself). */
  arn: z.union([z.string(), intrinsic]),
  /** The Secrets Manager secret `{"username", "password"}` the event source logs in with. */
  secretArn: z.optional(z.union([z.string(), intrinsic])),
  /** Queues to consume, one event source each. @defaultValue every queue of the registry */
  queues: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  batchSize: z._default(wholeNumber(1, 10_000), 100),
  /** Seconds a batch may wait to fill. */
  maximumBatchingWindow: z._default(wholeNumber(0, 300), 1),
});

/** Which broker the functions drain, and how to reach it. */
export const brokerSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('redis'),
    /** `BROKER_URL` of every function. @defaultValue unset: the runtime's local Redis */
    url: z.optional(
      z.union([
        z.string().check(z.regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')),
        intrinsic,
      ]),
    ),
  }),
  z.strictObject({
    kind: z.literal('rabbitmq'),
    url: z.optional(
      z.union([
        z.string().check(z.regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://')),
        intrinsic,
      ]),
    ),
    amazonMq: z.optional(amazonMqSchema),
  }),
]);

/** `custom.celery`. */
export const celeryConfigSchema = z.strictObject({
  /** The module exporting `registry` (and optionally `runtime`), from the service folder. */
  app: z.string().check(z.minLength(1)),
  broker: z.prefault(brokerSchema, { kind: 'redis' }),
  /** Settings of every generated function, under the plugin's own (not concurrency). */
  defaults: z._default(z.strictObject(sharedOverrides), {}),
  tasks: z._default(z.record(z.string(), taskOverridesSchema), {}),
  poller: z.prefault(pollerSchema, {}),
  dispatcher: z._default(functionOverridesSchema, {}),
  /** Every cron trigger; `lockUrl` is `CRON_LOCK_URL` (empty: the broker holds the locks). */
  cron: z._default(z.strictObject({ ...functionOverrides, lockUrl: z.optional(z.string()) }), {}),
  producers: z.prefault(
    z.strictObject({
      http: z.prefault(httpProducerSchema, {}),
      invoke: z.prefault(invokeProducerSchema, {}),
    }),
    {},
  ),
});

/** `custom.celery` as written. */
export type CeleryConfigInput = z.input<typeof celeryConfigSchema>;
/** `custom.celery` after defaults. */
export type CeleryConfig = z.output<typeof celeryConfigSchema>;

/**
 * Parses `custom.celery`.
 *
 * @throws InvalidConfigError listing every problem, each with its path from `custom.celery`
 * @example
 * parseCeleryConfig({ app: './src/app.ts' }).broker; // { kind: 'redis' }
 */
export function parseCeleryConfig(value: unknown): CeleryConfig {
  if (value === undefined || value === null) {
    throw new InvalidConfigError('serverless.yml', [
      {
        path: `${CONFIG_PATH}.app`,
        message: 'required: the module that exports your registry, e.g. ./src/app.ts',
      },
    ]);
  }
  const parsed = safeParse(celeryConfigSchema, value);
  if (!parsed.success) {
    throw new InvalidConfigError('serverless.yml', toFieldIssues(parsed.error, CONFIG_PATH));
  }
  const { broker } = parsed.data;
  if (broker.kind === 'rabbitmq' && broker.amazonMq) {
    const { arn, secretArn } = broker.amazonMq;
    if (arn !== '' && (secretArn === undefined || secretArn === '')) {
      throw new InvalidConfigError('serverless.yml', [
        {
          path: `${CONFIG_PATH}.broker.amazonMq.secretArn`,
          message: 'required with an arn: the secret {"username", "password"} of the broker',
        },
      ]);
    }
  }
  return parsed.data;
}

/**
 * `custom.celery` as JSON Schema, for `configSchemaHandler.defineCustomProperties`: the
 * framework then reports a misspelt key with its own validation, before packaging starts.
 */
export function celeryConfigJsonSchema(): Record<string, unknown> {
  const { $schema: _draft, ...schema } = z.toJSONSchema(celeryConfigSchema, {
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return schema;
}
