/**
 * What every function of an app shares at cold start: the registry and one broker, created on
 * first use and reused by every warm invocation of the same container.
 */
import type { Broker } from '../brokers/broker.js';
import { createBroker } from '../brokers/create-broker.js';
import { type BrokerConfigInput, DEFAULT_BROKER_URL } from '../config/broker-config.js';
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
  /** Broker options. @defaultValue `process.env.BROKER_URL`, else the local Redis */
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
            : (options.broker ?? process.env.BROKER_URL ?? DEFAULT_BROKER_URL);
        broker = createBroker(config, { queues: options.registry.queues });
      }
      return broker;
    },
  };
}
