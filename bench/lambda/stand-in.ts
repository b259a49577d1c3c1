/**
 * Lambda stand-ins for bench/lambda-path.ts: a fake context, an invoke meter (invokes in flight,
 * messages answered), and a `LambdaInvoker` that plays Lambda in this process: it waits a fixed
 * invoke overhead, then runs the task's real function (`createTaskHandler`) with a fake context,
 * as test/helpers/lambda.ts' `inProcessInvoker` does for the tests.
 */
import type { InvokeCommand, InvokeCommandOutput } from '@aws-sdk/client-lambda';
import type { Context } from 'aws-lambda';
import type { Registry } from '../../src/core/registry.js';
import { deployedFunctionName } from '../../src/lambda/function-names.js';
import type { LambdaInvoker } from '../../src/lambda/lambda-executor.js';
import {
  createTaskHandler,
  type TaskInvocation,
  type TaskInvocationResult,
} from '../../src/lambda/task-handler.js';
import { nowMs, sleep } from '../harness.js';

/** What the stand-in adds to every invoke: Lambda's own round trip for a warm function, ms. */
export const INVOKE_OVERHEAD_MS = 15;

/** A task function's timeout in the stand-in (its fake context starts with this much left). */
const TASK_TIMEOUT_MS = 30_000;

/** A Lambda context whose remaining time is whatever `remaining` says. */
export function fakeContext(functionName: string, remaining: () => number): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'bench',
    getRemainingTimeInMillis: remaining,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** A context with `ms` left, counting down with the clock. */
export function countdownContext(functionName: string, ms: number): Context {
  const deadline = Date.now() + ms;
  return fakeContext(functionName, () => Math.max(0, deadline - Date.now()));
}

/** Counts invokes as an invoker sees them. */
export class InvokeMeter {
  /** Invokes under way now. */
  inFlight = 0;
  /** Most invokes under way at once. */
  maxInFlight = 0;
  /** Invokes begun. */
  invokes = 0;
  /** Messages answered with an outcome. */
  answered = 0;
  /** Most messages one invoke carried. */
  maxBatch = 0;
  /** Messages answered with an outcome other than `succeeded` (a bench bug). */
  unexpected = 0;
  /** `nowMs()` of the last answer. */
  lastAnsweredAt = 0;

  begin(): void {
    this.invokes++;
    this.inFlight++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
  }

  /** An invoke returned; `outcomes` are its answer, if it had one. */
  end(outcomes: TaskInvocationResult['outcomes'] | undefined): void {
    this.inFlight--;
    if (!outcomes) return;
    this.answered += outcomes.length;
    if (outcomes.length > this.maxBatch) this.maxBatch = outcomes.length;
    for (const outcome of outcomes) if (outcome.kind !== 'succeeded') this.unexpected++;
    this.lastAnsweredAt = nowMs();
  }
}

/** An invoker that counts what goes through it. */
export interface MeteredInvoker extends LambdaInvoker {
  readonly meter: InvokeMeter;
}

/** The `Payload` of an invoke answer, as the SDK hands it over. */
function payloadOf(text: string): InvokeCommandOutput['Payload'] {
  return Object.assign(new Uint8Array(Buffer.from(text, 'utf8')), {
    transformToString: () => text,
  });
}

/** The request's payload; the Lambda executor sends bytes (streams and blobs are not read). */
function requestText(command: InvokeCommand): string {
  const payload = command.input.Payload;
  if (typeof payload === 'string') return payload;
  if (payload instanceof Uint8Array) return Buffer.from(payload).toString('utf8');
  throw new Error('the stand-in reads string and byte payloads only');
}

/** Options of {@link lambdaStandIn}. */
export interface StandInOptions {
  /** Added to every invoke before the function runs. @defaultValue {@link INVOKE_OVERHEAD_MS} */
  readonly overheadMs?: number;
}

/** {@link lambdaStandIn}'s invoker, with the CPU it spent playing the functions. */
export interface StandIn extends MeteredInvoker {
  /**
   * CPU time (µs, user + system) spent on Lambda's side of the invokes: reading the request,
   * the task handler, writing the answer. Exact while those run without yielding to other work
   * (no-op tasks: the handler settles in microtasks); an estimate otherwise.
   */
  readonly lambdaCpuUs: () => number;
}

/**
 * Serves one function per registered task, named as the poller and dispatcher name them (with
 * `FUNCTION_PREFIX`), each the real `createTaskHandler`: after the fixed overhead, the payload is
 * parsed, the handler runs with a 30 s context, and its answer is serialized, as Lambda would.
 *
 * Unlike Lambda, it runs many invocations in one process at once. middy hands every handler of a
 * process the same AbortSignal, and each running task invocation listens to it, so more than 10
 * at once make Node warn `MaxListenersExceededWarning` about that signal: an artefact of the
 * stand-in (one invocation per process in Lambda), not a leak.
 */
export function lambdaStandIn(registry: Registry, options: StandInOptions = {}): StandIn {
  const overheadMs = options.overheadMs ?? INVOKE_OVERHEAD_MS;
  const handlers = new Map(
    registry.tasks.map((task) => [
      deployedFunctionName(registry, task.name),
      createTaskHandler(registry, task.name),
    ]),
  );
  const meter = new InvokeMeter();
  let cpuUs = 0;
  return {
    meter,
    lambdaCpuUs: () => cpuUs,
    async send(command) {
      meter.begin();
      let outcomes: TaskInvocationResult['outcomes'] | undefined;
      try {
        await sleep(overheadMs);
        const functionName = command.input.FunctionName ?? '';
        const handler = handlers.get(functionName);
        if (!handler) {
          const error = new Error(`Function not found: ${functionName}`);
          error.name = 'ResourceNotFoundException';
          throw error;
        }
        const cpu = process.cpuUsage();
        const invocation = JSON.parse(requestText(command)) as TaskInvocation;
        const result = await handler(invocation, countdownContext(functionName, TASK_TIMEOUT_MS));
        const answer = JSON.stringify(result);
        const spent = process.cpuUsage(cpu);
        cpuUs += spent.user + spent.system;
        outcomes = result.outcomes;
        return { StatusCode: 200, Payload: payloadOf(answer) };
      } finally {
        meter.end(outcomes);
      }
    },
  };
}

/**
 * Counts invokes through a real client (serverless-offline's): in flight, and the messages
 * answered, read from each answer.
 */
export function meteredInvoker(client: LambdaInvoker): MeteredInvoker {
  const meter = new InvokeMeter();
  return {
    meter,
    async send(command) {
      meter.begin();
      let outcomes: TaskInvocationResult['outcomes'] | undefined;
      try {
        const response = await client.send(command);
        if (response.Payload && !response.FunctionError) {
          const text = Buffer.from(response.Payload).toString('utf8');
          outcomes = (JSON.parse(text) as TaskInvocationResult).outcomes;
        }
        return response;
      } finally {
        meter.end(outcomes);
      }
    },
  };
}
