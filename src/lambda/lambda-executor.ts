/**
 * Runs task batches by invoking each task's Lambda function (RequestResponse). A throttled invoke
 * (`TooManyRequestsException`: the account's or the function's concurrency is used up) is a
 * {@link ThrottledError}: the worker waits and narrows how many invokes it keeps in flight. Any
 * other failure to get outcomes back (timed out, crashed, a malformed answer) is thrown, and the
 * worker re-queues the messages without spending a task retry.
 */
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { CeleryError, toError } from '../core/errors.js';
import type { TaskMessage } from '../core/message.js';
import type { TaskOutcome } from '../core/task-outcome.js';
import { toRawDelivery } from '../core/wire.js';
import { type TaskExecutor, ThrottledError } from '../worker/executor.js';
import type { TaskInvocation, TaskInvocationResult } from './task-handler.js';

/** A task function could not be invoked or did not answer with outcomes. */
export class InvokeError extends CeleryError {
  override name = 'InvokeError' as const;
}

/** The slice of `LambdaClient` we call. */
export interface LambdaInvoker {
  send(
    command: InvokeCommand,
  ): Promise<Pick<InvokeCommandOutput, 'FunctionError' | 'Payload' | 'StatusCode'>>;
}

/** Options of {@link lambdaExecutor}. */
export interface LambdaExecutorOptions {
  /** Deployed function name of a task's function. */
  readonly functionName: (task: string) => string;
  /** @defaultValue a `LambdaClient` from the environment (`LAMBDA_ENDPOINT` overrides its endpoint) */
  readonly client?: LambdaInvoker;
  /** Most messages per invoke. @defaultValue 10 */
  readonly batchSize?: number;
}

/** An executor that invokes the task's function with the batch. */
export function lambdaExecutor(options: LambdaExecutorOptions): TaskExecutor {
  const client = options.client ?? defaultLambdaClient();
  return {
    batchSize: options.batchSize ?? 10,
    async execute(task: string, messages: readonly TaskMessage[]): Promise<TaskOutcome[]> {
      const functionName = options.functionName(task);
      const invocation: TaskInvocation = { messages: messages.map(toRawDelivery) };
      let response: Awaited<ReturnType<LambdaInvoker['send']>>;
      try {
        response = await client.send(
          new InvokeCommand({
            FunctionName: functionName,
            InvocationType: 'RequestResponse',
            Payload: Buffer.from(JSON.stringify(invocation)),
          }),
        );
      } catch (thrown) {
        // The SDK's class name is the part that says what happened (TooManyRequestsException,
        // ResourceNotFoundException); its message alone is often just "Rate Exceeded.".
        const error = toError(thrown);
        const message = `invoking ${functionName} failed: ${error.name}: ${error.message}`;
        if (error.name === 'TooManyRequestsException') {
          throw new ThrottledError(message, { cause: thrown });
        }
        throw new InvokeError(message, { cause: thrown });
      }
      const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : '';
      if (response.FunctionError) {
        throw new InvokeError(
          `${functionName} failed (${response.FunctionError}): ${text.slice(0, 500)}`,
        );
      }
      let result: TaskInvocationResult;
      try {
        result = JSON.parse(text) as TaskInvocationResult;
      } catch {
        throw new InvokeError(
          `${functionName} answered something that is not JSON: ${text.slice(0, 200)}`,
        );
      }
      if (!Array.isArray(result?.outcomes) || result.outcomes.length !== messages.length) {
        throw new InvokeError(
          `${functionName} answered ${text.slice(0, 200)} instead of ${messages.length} outcomes`,
        );
      }
      return [...result.outcomes];
    },
  };
}

let sharedClient: LambdaClient | undefined;

/**
 * One client per process, reused across warm invocations. The SDK's agent opens at most 50
 * sockets, and a RequestResponse invoke holds its socket until the function returns: that would
 * cap a poller at 50 invokes in flight whatever its `maxInFlight`. The worker bounds them itself.
 */
function defaultLambdaClient(): LambdaClient {
  const agent = { keepAlive: true, maxSockets: Number.POSITIVE_INFINITY };
  sharedClient ??= new LambdaClient({
    requestHandler: { httpAgent: agent, httpsAgent: agent },
    ...(process.env.LAMBDA_ENDPOINT ? { endpoint: process.env.LAMBDA_ENDPOINT } : {}),
  });
  return sharedClient;
}
