/**
 * A Lambda client that fails invokes of the per-task functions the way Lambda does, on a plan:
 * throttled (the SDK throws `TooManyRequestsException`), the service failing (`ServiceException`),
 * the function timing out or its runtime crashing mid-task (`FunctionError: 'Unhandled'` with
 * Lambda's error payload, after the task has started). Invokes the plan lets through run the
 * app's real task handlers in this process.
 */
import {
  type InvokeCommand,
  ServiceException,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import type { Registry } from '../../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER } from '../../../src/core/settlement.js';
import { decodeDelivery } from '../../../src/core/wire.js';
import type { LambdaInvoker } from '../../../src/lambda/lambda-executor.js';
import type { TaskInvocation } from '../../../src/lambda/task-handler.js';
import { inProcessInvoker, lambdaPayload, payloadText } from '../../helpers/lambda.js';

/** How one invoke fails; `null` lets it through. */
export type InvokeFault = 'throttle' | 'unavailable' | 'timeout' | 'crash';

/** One invoke, as the function received it. */
export interface InvokeAttempt {
  readonly functionName: string;
  /** 0 for the function's first invoke, then 1, 2 … */
  readonly attempt: number;
  readonly ids: readonly (string | null)[];
  /** `retries` of each message as sent. */
  readonly retries: readonly (number | null)[];
  /** `x-sc-invoke-failures` of each message as sent (`null` when absent). */
  readonly invokeFailures: readonly (number | null)[];
  readonly fault: InvokeFault | null;
}

/** A `LambdaInvoker` that fails on a plan and records every invoke. */
export interface FaultyInvoker extends LambdaInvoker {
  readonly attempts: InvokeAttempt[];
}

/** Lambda's answer when a function ran past its timeout. */
const TIMED_OUT = {
  errorType: 'Sandbox.Timedout',
  errorMessage:
    'RequestId: 5f1c1e8e-0000-4000-8000-000000000000 Error: Task timed out after 30.00 seconds',
};
/** Lambda's answer when the runtime process died (out of memory, killed). */
const CRASHED = {
  errorType: 'Runtime.ExitError',
  errorMessage:
    'RequestId: 5f1c1e8e-0000-4000-8000-000000000001 Error: Runtime exited with error: signal: killed',
};

/**
 * An invoker over the registry's task functions (no name prefix) whose invokes fail as
 * `plan(functionName, attempt)` says.
 */
export function faultyInvoker(
  registry: Registry,
  plan: (functionName: string, attempt: number) => InvokeFault | null,
): FaultyInvoker {
  const inner = inProcessInvoker(registry, { prefix: '' });
  const attempts: InvokeAttempt[] = [];
  const counts = new Map<string, number>();
  return {
    attempts,
    async send(command: InvokeCommand) {
      const functionName = command.input.FunctionName ?? '';
      const attempt = counts.get(functionName) ?? 0;
      counts.set(functionName, attempt + 1);
      const fault = plan(functionName, attempt);
      const { messages } = JSON.parse(payloadText(command)) as TaskInvocation;
      const decoded = messages.map((raw) => decodeDelivery(raw));
      attempts.push({
        functionName,
        attempt,
        ids: decoded.map((result) => (result.ok ? result.message.id : result.id)),
        retries: decoded.map((result) => (result.ok ? result.message.retries : null)),
        invokeFailures: decoded.map((result) => {
          const count = result.ok ? result.message.extraHeaders[INVOKE_FAILURES_HEADER] : null;
          return typeof count === 'number' ? count : null;
        }),
        fault,
      });
      switch (fault) {
        case 'throttle':
          throw new TooManyRequestsException({
            message: 'Rate Exceeded.',
            $metadata: { httpStatusCode: 429 },
            Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded',
            Type: 'User',
          });
        case 'unavailable':
          throw new ServiceException({
            message: 'Lambda was unable to process the request',
            $metadata: { httpStatusCode: 500 },
          });
        case 'timeout':
        case 'crash': {
          // The function started the task, then Lambda stopped it: what it did is lost.
          await inner.send(command);
          const payload = fault === 'timeout' ? TIMED_OUT : CRASHED;
          return {
            StatusCode: 200,
            FunctionError: 'Unhandled',
            Payload: lambdaPayload(JSON.stringify(payload)),
          };
        }
        case null:
          return inner.send(command);
      }
    },
  };
}
