/**
 * What every function of an app shares at cold start: the registry and one broker, created on
 * first use and reused by every warm invocation of the same container.
 */
import type { Broker } from '../brokers/broker.js';
import { createBroker } from '../brokers/create-broker.js';
import { createEventDispatcher } from '../brokers/create-event-dispatcher.js';
import { createResultBackend } from '../brokers/create-result-backend.js';
import type { RedisResultBackend } from '../brokers/redis/redis-result-backend.js';
import {
  type BrokerConfigInput,
  brokerKindOf,
  DEFAULT_BROKER_URL,
  redisTransportOptions,
} from '../config/broker-config.js';
import { celeryEventsFromEnv } from '../config/events-config.js';
import {
  type ResultBackendInput,
  resultBackendConfigFromEnv,
} from '../config/result-backend-config.js';
import { routeFor } from '../core/canvas.js';
import { InvalidConfigError } from '../core/errors.js';
import type { EventDispatcher } from '../core/event-dispatcher.js';
import type { Registry } from '../core/registry.js';

/** An app's registry and broker, as its Lambda functions see them. */
export interface LambdaRuntime {
  readonly registry: Registry;
  /** The broker, created on first call and then reused. */
  broker(): Broker;
  /**
   * The result backend, created on first call and then reused; `null` when none is configured
   * (then nothing is stored and no Redis client is loaded for it).
   */
  resultBackend?(): RedisResultBackend | null;
  /**
   * The Celery event dispatcher, created on first call beside the broker (same broker, its own
   * connection, opened at the first send) and reused; `null` when events are off.
   */
  events?(): EventDispatcher | null;
}

/** Options of {@link createRuntime}. */
export interface RuntimeOptions {
  readonly registry: Registry;
  /** Broker options. @defaultValue {@link brokerConfigFromEnv} */
  readonly broker?: BrokerConfigInput | (() => BrokerConfigInput);
  /**
   * Where results are stored (Celery's `result_backend`, Redis only): a `redis://` URL, which may
   * be the broker's, or the options. `null`: none, whatever the environment says. A bundle built
   * with `process.env.SERVERLESS_CELERY_RESULTS` defined as `"none"` carries no backend (the
   * plugin defines it so unless `custom.celery.resultBackend` is set); one given then is refused.
   * @defaultValue `RESULT_BACKEND`, else none
   */
  readonly resultBackend?: ResultBackendInput | null;
  /**
   * Send Celery events (Celery's `worker_send_task_events`): the poller and the Amazon MQ
   * dispatcher announce every task they run, and their environment's presence. Off costs
   * nothing: no dispatcher, no connection. @defaultValue `CELERY_EVENTS` (see
   * {@link celeryEventsFromEnv}), else false
   */
  readonly events?: boolean;
}

/**
 * Creates the runtime of an app. Nothing connects until a handler needs the broker.
 *
 * @example
 * export const runtime = createRuntime({ registry });
 */
export function createRuntime(options: RuntimeOptions): LambdaRuntime {
  let broker: Broker | undefined;
  let backend: RedisResultBackend | null | undefined;
  let events: EventDispatcher | null | undefined;
  const brokerConfig = () =>
    typeof options.broker === 'function'
      ? options.broker()
      : (options.broker ?? brokerConfigFromEnv());
  return {
    registry: options.registry,
    resultBackend() {
      if (backend === undefined) {
        const input =
          options.resultBackend === undefined
            ? resultBackendConfigFromEnv()
            : options.resultBackend;
        backend =
          input === null ? null : createResultBackend(input, { route: routeFor(options.registry) });
      }
      return backend;
    },
    broker() {
      broker ??= createBroker(brokerConfig(), { queues: options.registry.queues });
      return broker;
    },
    events() {
      if (events === undefined) {
        const on = options.events ?? celeryEventsFromEnv();
        events = on ? createEventDispatcher(brokerConfig()) : null;
      }
      return events;
    },
  };
}

/**
 * The broker a function is deployed with: `BROKER_URL`, else the local Redis. On Redis,
 * `BROKER_VISIBILITY_TIMEOUT` (seconds) is its visibility timeout unless the URL sets one
 * (`?visibility_timeout=`), so that serverless.yml can tie the poller's to the poller's own
 * timeout while an operator's URL still wins. Ignored for RabbitMQ, which has no such timeout.
 *
 * `BROKER_SECRET_ARN` (empty counts as unset) names the Secrets Manager secret holding the
 * broker's credentials, `BROKER_URL` then holding none: it becomes the config's `secretArn`. This
 * reads no secret: the broker's first connection does, once per cold start, and again when the
 * broker refuses the credentials (a rotated password), so `runtime.broker()` stays synchronous
 * and a handler that never touches the broker never calls Secrets Manager. A password in
 * `BROKER_URL` beside a secret is refused (InvalidConfigError, path `secretArn`) when the broker
 * is created; a user name in it is used when the secret names none.
 *
 * @throws InvalidConfigError naming `BROKER_VISIBILITY_TIMEOUT` when it is not a positive number
 * @example
 * // BROKER_URL=redis://cache:6379/0 BROKER_VISIBILITY_TIMEOUT=960
 * brokerConfigFromEnv() // → { kind: 'redis', url: 'redis://cache:6379/0', visibilityTimeout: 960 }
 * // BROKER_URL=amqps://b-1.mq.eu-west-1.amazonaws.com:5671/ BROKER_SECRET_ARN=arn:aws:secretsmanager:…
 * brokerConfigFromEnv() // → { kind: 'rabbitmq', url: 'amqps://b-1…:5671/', secretArn: 'arn:aws:secretsmanager:…' }
 */
export function brokerConfigFromEnv(
  env: Record<string, string | undefined> = process.env,
): BrokerConfigInput {
  const config = brokerUrlConfigFromEnv(env);
  const secretArn = env.BROKER_SECRET_ARN;
  const kind = brokerKindOf(typeof config === 'string' ? config : (config.url ?? ''));
  // A URL of no broker is left for parseBrokerConfig to refuse, with or without a secret.
  if (!secretArn || !kind) return config;
  return typeof config === 'string' ? { kind, url: config, secretArn } : { ...config, secretArn };
}

/** {@link brokerConfigFromEnv} without the secret. */
function brokerUrlConfigFromEnv(env: Record<string, string | undefined>): BrokerConfigInput {
  const url = env.BROKER_URL ?? DEFAULT_BROKER_URL;
  const given = env.BROKER_VISIBILITY_TIMEOUT;
  if (!given || brokerKindOf(url) !== 'redis') return url;
  const seconds = Number(given);
  if (!/^\d*\.?\d+$/.test(given) || !(seconds > 0)) {
    throw new InvalidConfigError('environment', [
      {
        path: 'BROKER_VISIBILITY_TIMEOUT',
        message: `must be a positive number of seconds, not ${JSON.stringify(given)}`,
      },
    ]);
  }
  if (URL.canParse(url) && redisTransportOptions(url).visibilityTimeout !== undefined) return url;
  return { kind: 'redis', url, visibilityTimeout: seconds };
}
