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
import { OPTIONAL_REDIS_URL_PATTERN, REDIS_URL_SCHEMES } from '../config/redis-url.js';
import { InvalidConfigError } from '../core/errors.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';
import { brokerIssues } from './broker-checks.js';
import { brokerSchema } from './broker-schema.js';
import {
  cfnValue,
  flag,
  idList,
  intrinsic,
  logRetentionDays,
  wholeNumber,
} from './schema-values.js';

/** Where the configuration sits in `serverless.yml`; every error path starts with it. */
export const CONFIG_PATH = 'custom.celery';

/** Overrides any generated function takes: the framework's function properties, verbatim. */
const sharedOverrides = {
  memorySize: z.optional(wholeNumber(128, 10_240)),
  timeout: z.optional(wholeNumber(1, 900)),
  description: z.optional(z.string()),
  architecture: z.optional(z.enum(['x86_64', 'arm64'])),
  ephemeralStorageSize: z.optional(wholeNumber(512, 10_240)),
  environment: z.optional(z.record(z.string(), z.union([z.string(), intrinsic]))),
  /** Its own VPC, or `false`: none, whatever `custom.celery.vpc` and `provider.vpc` say. */
  vpc: z.optional(
    z.union([
      z.strictObject({
        securityGroupIds: z.array(cfnValue).check(z.minLength(1)),
        subnetIds: z.array(cfnValue).check(z.minLength(1)),
      }),
      z.literal(false),
    ]),
  ),
  layers: z.optional(z.array(cfnValue)),
  tags: z.optional(z.record(z.string(), z.string())),
  logRetentionInDays: z.optional(logRetentionDays),
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

/** `producers.http`: `POST /tasks/{name}`, and `GET /results/{id}` with `results`. */
const httpProducerSchema = z.strictObject({
  ...functionOverrides,
  enabled: z._default(flag, true),
  path: z._default(
    z.string().check(z.regex(/^\/.*\{name\}/, 'must start with / and hold {name}')),
    '/tasks/{name}',
  ),
  /** `iam`: callers sign requests (SigV4). `none`: anyone who can reach the API publishes. */
  auth: z._default(z.enum(['iam', 'none']), 'iam'),
  /**
   * Adds `GET /results/{id}` (same auth): a task's state, and its result once final, read from
   * `resultBackend`, which it requires. With `auth: none` anyone holding an id reads its result.
   */
  results: z._default(flag, false),
});

/** `producers.invoke`: direct invoke `{ task, args, kwargs }`. */
const invokeProducerSchema = z.strictObject({
  ...functionOverrides,
  enabled: z._default(flag, true),
});

/**
 * `vpc`: the VPC of the broker. Every generated function that connects to the broker (poller,
 * dispatcher, producers, cron triggers) runs in it, the task functions as `tasks` says, and your
 * own functions listed in `functions`; their roles get the network-interface permissions.
 * Both lists empty (params left at `''`): no VPC.
 */
const vpcSchema = z.strictObject({
  subnetIds: z._default(idList(16), []),
  securityGroupIds: z._default(idList(5), []),
  /**
   * Which task functions run in it: `onceStore` those that record their runs (atMostOnce,
   * idempotent: their once store is the broker or ONCE_STORE_URL), `all` (tasks that use the
   * VPC's own resources, as the demo's event store), `none`.
   */
  tasks: z._default(z.enum(['onceStore', 'all', 'none']), 'onceStore'),
  /** Your own functions (keys under `functions`) that join it, unless they set a `vpc`. */
  functions: z._default(z.array(z.string().check(z.minLength(1))), []),
});

/** `custom.celery.vpc` after defaults. */
export type VpcSettings = z.output<typeof vpcSchema>;

/** `custom.celery`. */
export const celeryConfigSchema = z.strictObject({
  /** The module exporting `registry` (and optionally `runtime`), from the service folder. */
  app: z.string().check(z.minLength(1)),
  broker: z.prefault(brokerSchema, { kind: 'redis' }),
  /**
   * The prefix of every generated function's name, and `FUNCTION_PREFIX` (the poller and
   * dispatcher invoke `<prefix><taskFunctionKey>`): shorten it when a name passes Lambda's 64
   * characters. @defaultValue `<service>-<stage>-`, the framework's
   */
  functionPrefix: z.optional(
    z.string().check(z.regex(/^[A-Za-z0-9_-]{1,40}$/, 'letters, digits, - and _, at most 40')),
  ),
  vpc: z.optional(vpcSchema),
  /**
   * `RESULT_BACKEND` of every function: a `redis://` URL (may be the broker's) where results are
   * stored in Celery's format, with `?global_keyprefix=` for Celery ≥ 5.3's key prefix.
   * @defaultValue unset (or empty, as a param left at `''`): no results are stored
   */
  resultBackend: z.optional(
    z.pipe(
      z.string().check(z.regex(OPTIONAL_REDIS_URL_PATTERN, `${REDIS_URL_SCHEMES}, or be empty`)),
      z.transform((url) => url || undefined),
    ),
  ),
  /**
   * Celery events (`CELERY_EVENTS=true` in every function): the poller and the dispatcher send
   * `task-*` and `worker-*` events that Flower and `celery events` read, on the broker.
   * @defaultValue false: none are sent, no connection is opened for them
   */
  events: z._default(flag, false),
  /**
   * Days CloudWatch keeps each generated function's logs.
   * @defaultValue `provider.logRetentionInDays` if set, else 30
   */
  logRetentionInDays: z.optional(logRetentionDays),
  /**
   * An SQS queue in the stack (`CeleryScheduleFailureQueue`) as the on-failure destination of
   * the functions EventBridge invokes (cron triggers, the poller): a tick that failed every try,
   * or expired, is kept there 14 days instead of only in the logs.
   */
  scheduleFailureQueue: z._default(flag, true),
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
  const issues = [
    ...brokerIssues(parsed.data.broker, `${CONFIG_PATH}.broker`),
    ...vpcIssues(parsed.data.vpc),
    ...resultRouteIssues(parsed.data),
  ];
  if (issues.length > 0) throw new InvalidConfigError('serverless.yml', issues);
  return parsed.data;
}

/** A VPC needs both lists: one without the other is a param forgotten. */
function vpcIssues(vpc: VpcSettings | undefined) {
  if (!vpc) return [];
  const { subnetIds, securityGroupIds } = vpc;
  if ((subnetIds.length === 0) === (securityGroupIds.length === 0)) return [];
  const [missing, given] =
    subnetIds.length === 0 ? ['subnetIds', 'securityGroupIds'] : ['securityGroupIds', 'subnetIds'];
  return [
    {
      path: `${CONFIG_PATH}.vpc.${missing}`,
      message: `required with ${given}: Lambda needs subnets and security groups`,
    },
  ];
}

/** The result route reads the result backend, on the HTTP producer: it needs both. */
function resultRouteIssues(config: CeleryConfig) {
  const { enabled, results } = config.producers.http;
  if (!results) return [];
  const path = `${CONFIG_PATH}.producers.http.results`;
  return [
    ...(config.resultBackend === undefined
      ? [
          {
            path,
            message: `needs ${CONFIG_PATH}.resultBackend: GET /results/{id} reads results from it, and none are stored without it`,
          },
        ]
      : []),
    ...(enabled
      ? []
      : [{ path, message: 'needs producers.http.enabled: the route is on the HTTP producer' }]),
  ];
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
