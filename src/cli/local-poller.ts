/**
 * The long-lived poller of `serverless-celery dev` (and `npm start`) on Redis: the scheduled
 * `poller` function's loop (`runWorker` with the Lambda executor), run in `dev`'s process and
 * aimed at serverless-offline's Lambda endpoint, so every task runs in its own function exactly
 * as in AWS. With the functions' result backend it stores what they return, as the poller does.
 */
import type { Broker } from '../brokers/broker.js';
import type { Registry } from '../core/registry.js';
import { deployedFunctionName } from '../lambda/function-names.js';
import { type LambdaInvoker, lambdaExecutor } from '../lambda/lambda-executor.js';
import type { WorkerEvent } from '../worker/dispatch.js';
import type { FlowBackend } from '../worker/flow.js';
import { runWorker } from '../worker/local-worker.js';

/** Options of {@link runLocalPoller}. */
export interface LocalPollerOptions {
  readonly broker: Broker;
  readonly registry: Registry;
  /** A client for serverless-offline's Lambda endpoint (`offlineLambdaClient`). */
  readonly client: LambdaInvoker;
  /** `<service>-<stage>-`, as serverless-offline names the functions. */
  readonly functionPrefix: string;
  /** Stops taking messages; what is held is settled, then the promise resolves. */
  readonly signal: AbortSignal;
  /** Called once per settled message. */
  readonly onOutcome: (event: WorkerEvent) => void;
  /** Where broker trouble is reported. */
  readonly warn: (message: string) => void;
  /** Queues to drain. @defaultValue every declared queue */
  readonly queues?: readonly string[];
  /**
   * Invokes in flight at once. serverless-offline runs each invoke in a worker thread of this
   * machine, so the deployed poller's 100 would only contend for its cores. @defaultValue 10
   */
  readonly maxInFlight?: number;
  /** Most messages per invoke, as the `poller` function. @defaultValue 10 */
  readonly invokeBatchSize?: number;
  /**
   * Where results are stored: the task functions' `RESULT_BACKEND`. The caller closes it.
   * @defaultValue none, nothing is stored
   */
  readonly resultBackend?: FlowBackend | null;
}

/**
 * Drains the queues until `signal` aborts, invoking `<prefix><taskFunctionKey>` with each task's
 * batch and settling every message from its own outcome. A failed invoke re-queues the messages
 * without spending a task retry (poison after 5), as the deployed poller does.
 */
export function runLocalPoller(options: LocalPollerOptions): Promise<void> {
  const { registry } = options;
  return runWorker(options.broker, registry, {
    resultBackend: options.resultBackend ?? null,
    queues: options.queues ?? registry.queues.map((queue) => queue.name),
    concurrency: options.maxInFlight ?? 10,
    signal: options.signal,
    executor: lambdaExecutor({
      functionName: (task) => deployedFunctionName(registry, task, options.functionPrefix),
      client: options.client,
      batchSize: options.invokeBatchSize ?? 10,
    }),
    onOutcome: options.onOutcome,
    logger: { warn: options.warn },
  });
}
