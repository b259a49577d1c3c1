/**
 * `custom.celery.broker`: which broker the functions drain, how they reach it and log in, and
 * (RabbitMQ) the Amazon MQ event source of the dispatcher. A discriminated union on `kind`; the
 * URL's scheme is checked against it, never used to pick it.
 *
 * Credentials: give the URL without them plus `secretArn`, a Secrets Manager secret
 * `{"username", "password"}` (RabbitMQ; the one the event source logs in with) or the Redis AUTH
 * token or ACL user. The functions get the URL as `BROKER_URL` and the ARN as
 * `BROKER_SECRET_ARN`, and read the secret at cold start: nothing secret in the template or
 * `.serverless/`. A URL with a password still works (local use), but not beside a secret.
 */
import * as z from 'zod/mini';
import { REDIS_URL_PATTERN, REDIS_URL_SCHEMES } from '../config/redis-url.js';
import { intrinsic, wholeNumber } from './schema-values.js';

/** A Secrets Manager ARN, or empty (none: a `${param:…}` left at its default). */
const secretArn = z.union([z.string(), intrinsic]);

/** The Amazon MQ event source of the dispatcher (`rabbitmq` events). */
export const amazonMqSchema = z.strictObject({
  /** The broker's ARN. Empty: no event source (serverless-offline feeds the dispatcher itself). */
  arn: z.union([z.string(), intrinsic]),
  /** The Secrets Manager secret `{"username", "password"}` the event source logs in with. */
  secretArn: z.optional(secretArn),
  /** Queues to consume, one event source each. @defaultValue every queue of the registry */
  queues: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  batchSize: z._default(wholeNumber(1, 10_000), 100),
  /** Seconds a batch may wait to fill. */
  maximumBatchingWindow: z._default(wholeNumber(0, 300), 1),
  /**
   * The vhost the event source reads; empty is unset (a `${param:…}` left at `''`).
   * @defaultValue the broker URL's (`amqps://host:5671/orders` → `orders`; none → RabbitMQ's
   * default `/`)
   */
  virtualHost: z.optional(z.string()),
});

/** `custom.celery.broker`. */
export const brokerSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('redis'),
    /** `BROKER_URL` of every function. @defaultValue unset: the runtime's local Redis */
    url: z.optional(
      z.union([z.string().check(z.regex(REDIS_URL_PATTERN, REDIS_URL_SCHEMES)), intrinsic]),
    ),
    /** `BROKER_SECRET_ARN`: the AUTH token (or ACL user and password) of the URL. */
    secretArn: z.optional(secretArn),
  }),
  z.strictObject({
    kind: z.literal('rabbitmq'),
    url: z.optional(
      z.union([
        z.string().check(z.regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://')),
        intrinsic,
      ]),
    ),
    /** `BROKER_SECRET_ARN`. @defaultValue `amazonMq.secretArn` (the event source's user) */
    secretArn: z.optional(secretArn),
    amazonMq: z.optional(amazonMqSchema),
  }),
]);

/** `custom.celery.broker` after defaults. */
export type BrokerSettings = z.output<typeof brokerSchema>;
