/**
 * What every function of an app shares at cold start: the registry and one broker, created on
 * first use and reused by every warm invocation of the same container.
 */
import type { Broker } from '../brokers/broker.js';
import { createBroker } from '../brokers/create-broker.js';
import {
  type BrokerConfigInput,
  brokerKindOf,
  DEFAULT_BROKER_URL,
  redisTransportOptions,
} from '../config/broker-config.js';
import { InvalidConfigError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';

/** An app's registry and broker, as its Lambda functions see them. */
export interface LambdaRuntime {
  readonly registry: Registry;
  /** The broker, created on first call and then reused. */
  broker(): Broker;
}

/** Options of {@link createRuntime}. */
export interface RuntimeOptions {
  readonly registry: Registry;
  /** Broker options. @defaultValue {@link brokerConfigFromEnv} */
  readonly broker?: BrokerConfigInput | (() => BrokerConfigInput);
}

/**
 * Creates the runtime of an app. Nothing connects until a handler needs the broker.
 *
 * @example
 * export const runtime = createRuntime({ registry });
 */
export function createRuntime(options: RuntimeOptions): LambdaRuntime {
  let broker: Broker | undefined;
  return {
    registry: options.registry,
    broker() {
      if (!broker) {
        const config =
          typeof options.broker === 'function'
            ? options.broker()
            : (options.broker ?? brokerConfigFromEnv());
        broker = createBroker(config, { queues: options.registry.queues });
      }
      return broker;
    },
  };
}

/**
 * The broker a function is deployed with: `BROKER_URL`, else the local Redis. On Redis,
 * `BROKER_VISIBILITY_TIMEOUT` (seconds) is its visibility timeout unless the URL sets one
 * (`?visibility_timeout=`), so that serverless.yml can tie the poller's to the poller's own
 * timeout while an operator's URL still wins. Ignored for RabbitMQ, which has no such timeout.
 *
 * @throws InvalidConfigError naming `BROKER_VISIBILITY_TIMEOUT` when it is not a positive number
 * @example
 * // BROKER_URL=redis://cache:6379/0 BROKER_VISIBILITY_TIMEOUT=960
 * brokerConfigFromEnv() // → { kind: 'redis', url: 'redis://cache:6379/0', visibilityTimeout: 960 }
 */
export function brokerConfigFromEnv(
  env: Record<string, string | undefined> = process.env,
): BrokerConfigInput {
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
