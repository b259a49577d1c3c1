/**
 * Helpers for the Lambda layer's tests: a fake Lambda context, an in-process `LambdaInvoker` that
 * routes `InvokeCommand`s to the app's task handlers by function name (as Lambda would), a fake
 * broker and a scripted executor that record what they were asked to do, and delivery factories.
 * No mock library: every fake is a plain object that keeps its calls.
 */
import type { InvokeCommand, InvokeCommandOutput } from '@aws-sdk/client-lambda';
import type { Context } from 'aws-lambda';
import type {
  Broker,
  DeadLetterEntry,
  DeadLetterItem,
  Delivery,
  QueueStats,
  SettleItem,
} from '../../src/brokers/broker.js';
import type { TaskMessage } from '../../src/core/message.js';
import type { Registry } from '../../src/core/registry.js';
import type { TaskOutcome } from '../../src/core/task-outcome.js';
import { decodeDelivery, type RawDelivery } from '../../src/core/wire.js';
import { deployedFunctionName } from '../../src/lambda/function-names.js';
import type { LambdaInvoker } from '../../src/lambda/lambda-executor.js';
import type { LambdaRuntime } from '../../src/lambda/runtime.js';
import {
  createTaskHandler,
  type TaskHandlerOptions,
  type TaskInvocation,
  type TaskInvocationResult,
} from '../../src/lambda/task-handler.js';
import type { TaskExecutor } from '../../src/worker/executor.js';

/** Options of {@link fakeContext}. */
export interface FakeContextOptions {
  /** Milliseconds left when the context is made; they run down with the real clock. @defaultValue 30000 */
  readonly remainingMs?: number;
  /** Reads the remaining time instead, for a test that moves it by hand. */
  readonly remaining?: () => number;
  /** @defaultValue `test-function` */
  readonly functionName?: string;
}

/** A Lambda context whose `getRemainingTimeInMillis` counts down (or says what the test says). */
export function fakeContext(options: FakeContextOptions = {}): Context {
  const deadline = Date.now() + (options.remainingMs ?? 30_000);
  const functionName = options.functionName ?? 'test-function';
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'test',
    getRemainingTimeInMillis: options.remaining ?? (() => Math.max(0, deadline - Date.now())),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** A remaining time a test sets by hand, for {@link FakeContextOptions.remaining}. */
export function manualRemaining(startMs: number): {
  remaining: () => number;
  set(ms: number): void;
} {
  let current = startMs;
  return {
    remaining: () => current,
    set: (ms) => {
      current = ms;
    },
  };
}

/** The `Payload` of an invoke response, as the SDK hands it over. */
export function lambdaPayload(text: string): InvokeCommandOutput['Payload'] {
  return Object.assign(new Uint8Array(Buffer.from(text, 'utf8')), {
    transformToString: () => text,
  });
}

/** The text of an `InvokeCommand`'s payload. */
export function payloadText(command: InvokeCommand): string {
  const payload = command.input.Payload;
  if (payload === undefined) return '';
  if (typeof payload === 'string') return payload;
  if (payload instanceof Uint8Array) return Buffer.from(payload).toString('utf8');
  throw new Error('payloadText reads string and byte payloads only');
}

/** One invoke the in-process invoker served. */
export interface InvokeRecord {
  readonly functionName: string;
  readonly invocationType: string | undefined;
  /** The batch, as sent. */
  readonly messages: readonly RawDelivery[];
  /** Task ids of the batch, in order (`null` where undecodable). */
  readonly ids: readonly (string | null)[];
  /** `retries` of each message of the batch. */
  readonly retries: readonly (number | null)[];
  /** What the function answered, or `null` when the invoke failed. */
  readonly outcomes: readonly TaskOutcome[] | null;
  /** Why the invoke failed, or `null`. */
  readonly error: string | null;
  /** `Date.now()` when the invoke began. */
  readonly at: number;
}

/** A `LambdaInvoker` that runs the app's task functions in this process. */
export interface InProcessInvoker extends LambdaInvoker {
  /** Every invoke, in the order they began. */
  readonly calls: InvokeRecord[];
  /** The function names it serves. */
  readonly functionNames: readonly string[];
}

/** Options of {@link inProcessInvoker}. */
export interface InProcessInvokerOptions {
  /** `<service>-<stage>-` of the function names. @defaultValue `process.env.FUNCTION_PREFIX` */
  readonly prefix?: string;
  /** Milliseconds each task function's context starts with (its timeout). @defaultValue 30000 */
  readonly timeoutMs?: number;
  /** Options of every task handler. */
  readonly handler?: TaskHandlerOptions;
  /**
   * Called before each invoke. What it throws, `send` throws, as the SDK does for a throttled or
   * unreachable function.
   */
  readonly beforeInvoke?: (functionName: string, invocation: TaskInvocation) => void;
}

/**
 * An invoker serving one task function per registered task, named as the poller and dispatcher
 * name them ({@link deployedFunctionName}), each built with `createTaskHandler`. A handler that
 * rejects answers `FunctionError: 'Unhandled'`, as Lambda does; an unknown function name throws
 * `ResourceNotFoundException`, as the SDK does.
 */
export function inProcessInvoker(
  registry: Registry,
  options: InProcessInvokerOptions = {},
): InProcessInvoker {
  const prefix = options.prefix ?? process.env.FUNCTION_PREFIX ?? '';
  const handlers = new Map(
    registry.tasks.map((task) => [
      deployedFunctionName(registry, task.name, prefix),
      createTaskHandler(registry, task.name, options.handler),
    ]),
  );
  const calls: InvokeRecord[] = [];
  return {
    calls,
    functionNames: [...handlers.keys()],
    async send(command) {
      const functionName = command.input.FunctionName ?? '';
      const invocation = JSON.parse(payloadText(command)) as TaskInvocation;
      const decoded = invocation.messages.map((raw) => decodeDelivery(raw));
      const base = {
        functionName,
        invocationType: command.input.InvocationType,
        messages: invocation.messages,
        ids: decoded.map((result) => (result.ok ? result.message.id : result.id)),
        retries: decoded.map((result) => (result.ok ? result.message.retries : null)),
        at: Date.now(),
      };
      const record = (outcomes: readonly TaskOutcome[] | null, error: string | null) =>
        calls.push({ ...base, outcomes, error });
      try {
        options.beforeInvoke?.(functionName, invocation);
      } catch (error) {
        record(null, (error as Error).message);
        throw error;
      }
      const handler = handlers.get(functionName);
      if (!handler) {
        const error = new Error(`Function not found: ${functionName}`);
        error.name = 'ResourceNotFoundException';
        record(null, error.message);
        throw error;
      }
      const context = fakeContext({
        functionName,
        ...(options.timeoutMs === undefined ? {} : { remainingMs: options.timeoutMs }),
      });
      let result: TaskInvocationResult;
      try {
        result = await handler(invocation, context);
      } catch (thrown) {
        const error = thrown as Error;
        record(null, `${error.name}: ${error.message}`);
        const payload = { errorType: error.name, errorMessage: error.message };
        return {
          StatusCode: 200,
          FunctionError: 'Unhandled',
          Payload: lambdaPayload(JSON.stringify(payload)),
        };
      }
      record(result.outcomes, null);
      return { StatusCode: 200, Payload: lambdaPayload(JSON.stringify(result)) };
    },
  };
}

/** Options of {@link fakeBroker}. */
export interface FakeBrokerOptions {
  readonly kind?: 'redis' | 'rabbitmq';
  /** Batches `receive` hands out, one per call; afterwards it returns none. */
  readonly batches?: readonly (readonly Delivery[])[];
  /** Every operation but `receive` and `close` throws this (a broker that went away). */
  readonly failWith?: Error;
}

/** A {@link Broker} that keeps what it is asked to do. */
export interface FakeBroker extends Broker {
  /** Messages published, in order. */
  readonly published: TaskMessage[];
  /** One entry per `settle` call. */
  readonly settleCalls: (readonly SettleItem[])[];
  /** Every `deadLetter` item, in order. */
  readonly deadLettered: DeadLetterItem[];
  /** Queues `receive` was called for, in order. */
  readonly receivedFrom: string[];
  /** Every settled item, across calls. */
  settled(): SettleItem[];
  /** True once `close` ran. */
  readonly isClosed: boolean;
}

/** A broker fake that records publishes, settlements and dead letters. */
export function fakeBroker(options: FakeBrokerOptions = {}): FakeBroker {
  const batches = [...(options.batches ?? [])];
  const published: TaskMessage[] = [];
  const settleCalls: (readonly SettleItem[])[] = [];
  const deadLettered: DeadLetterItem[] = [];
  const receivedFrom: string[] = [];
  let closed = false;
  const check = () => {
    if (options.failWith) throw options.failWith;
  };
  return {
    kind: options.kind ?? 'redis',
    published,
    settleCalls,
    deadLettered,
    receivedFrom,
    settled: () => settleCalls.flat(),
    get isClosed() {
      return closed;
    },
    async publish(messages) {
      check();
      published.push(...messages);
    },
    async receive(queue, { max }) {
      receivedFrom.push(queue);
      const batch = batches.shift() ?? [];
      return batch.slice(0, max);
    },
    async settle(items) {
      check();
      settleCalls.push([...items]);
    },
    async deadLetter(items) {
      check();
      deadLettered.push(...items);
    },
    async stats(queue): Promise<QueueStats> {
      check();
      return { queue, ready: 0, unacked: 0, delayed: 0, deadLettered: deadLettered.length };
    },
    async deadLetters(): Promise<DeadLetterEntry[]> {
      check();
      return [];
    },
    async replayDeadLetters() {
      check();
      return 0;
    },
    async purgeDeadLetters() {
      check();
      return 0;
    },
    async close() {
      closed = true;
    },
  };
}

/** A runtime over `registry` whose broker is `broker`. */
export function fakeRuntime(registry: Registry, broker: Broker): LambdaRuntime {
  return { registry, broker: () => broker };
}

/** A held delivery of `message`, from its own queue. */
export function deliveryOf(message: TaskMessage, redelivered = false): Delivery {
  return { queue: message.routingKey, result: { ok: true, message }, redelivered };
}

/** A delivery that did not decode: a pickle message, as a Python producer misconfigured sends. */
export function undecodableDelivery(queue: string, id: string = crypto.randomUUID()): Delivery {
  const result = decodeDelivery({
    headers: { task: 'sentry.tasks.do_work', id },
    body: '\x80\x04\x95',
    contentType: 'application/x-python-serialize',
    contentEncoding: 'binary',
    priority: 0,
    replyTo: null,
    exchange: '',
    routingKey: queue,
    redelivered: false,
  });
  return { queue, result, redelivered: false };
}

/** One call of a {@link scriptedExecutor}. */
export interface ExecuteCall {
  readonly task: string;
  readonly messages: readonly TaskMessage[];
}

/**
 * An executor that answers as `answer` says and records each call; it takes up to `batchSize`
 * messages per call, as the Lambda executor does.
 */
export function scriptedExecutor(
  answer: (
    task: string,
    messages: readonly TaskMessage[],
  ) => TaskOutcome[] | Promise<TaskOutcome[]>,
  batchSize = 10,
): TaskExecutor & { readonly calls: ExecuteCall[] } {
  const calls: ExecuteCall[] = [];
  return {
    calls,
    batchSize,
    async execute(task, messages) {
      calls.push({ task, messages });
      return answer(task, messages);
    },
  };
}

/** A `succeeded` outcome. */
export const SUCCEEDED: TaskOutcome = { kind: 'succeeded', durationMs: 1 };
