/**
 * Publishing a task call that arrives as untyped input (an HTTP body, a direct Lambda invoke):
 * validated, encoded and published, with an HTTP-style status for every way it can go wrong.
 * Nothing is half-published: a call is one message, published or not.
 */
import * as z from 'zod/mini';
import type { Broker } from '../brokers/broker.js';
import {
  BrokerError,
  type FieldIssue,
  InvalidArgumentsError,
  PayloadTooLargeError,
} from '../core/errors.js';
import { isPlainObject } from '../core/json.js';
import type { Registry } from '../core/registry.js';
import type { Task, TaskCallInput } from '../core/task.js';
import { ambientTraceContext, type TraceContext } from '../core/trace-context.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';
import type { SentAnnouncer } from './sent-events.js';
import { stampMessages } from './stamp.js';

/** The call as a client sends it. Times are ISO 8601 strings; durations are seconds. */
export const callInputSchema = z.strictObject({
  args: z.optional(z.array(z.unknown())),
  kwargs: z.optional(z.record(z.string(), z.unknown())),
  countdown: z.optional(z.number().check(z.nonnegative())),
  eta: z.optional(z.iso.datetime({ offset: true })),
  expires: z.optional(z.union([z.number().check(z.positive()), z.iso.datetime({ offset: true })])),
  priority: z.optional(z.int().check(z.minimum(0), z.maximum(255))),
  id: z.optional(z.string().check(z.minLength(1), z.maxLength(255))),
});

/** A call as a client sends it. */
export type CallInput = z.input<typeof callInputSchema>;

/** The outcome of a publish, with the HTTP status a producer answers. */
export type PublishResult =
  | { readonly status: 202; readonly id: string; readonly task: string }
  | { readonly status: 400; readonly error: string; readonly issues: readonly FieldIssue[] }
  | { readonly status: 404 | 413 | 503; readonly error: string };

/**
 * Validates `input` against the call schema and the task's own schemas, then publishes it with
 * the current trace context recorded. Never throws for bad input or an unreachable broker: the
 * result says what went wrong.
 *
 * @param traceContext - the context to record @defaultValue {@link ambientTraceContext}
 * @param announce - sends `task-sent` for the published message (`sentAnnouncer`), never
 *   failing the call @defaultValue none
 */
export async function publishCall(
  registry: Registry,
  broker: Broker,
  taskName: string,
  input: unknown,
  traceContext: () => TraceContext = () => ambientTraceContext(),
  announce?: SentAnnouncer,
): Promise<PublishResult> {
  const lookup = registry.lookup(taskName);
  if (lookup.kind === 'unregistered') return { status: 404, error: lookup.error.message };
  const parsed = safeParse(callInputSchema, input ?? {});
  if (!parsed.success) {
    const issues = [...toFieldIssues(parsed.error), ...argumentIssues(lookup.task, input)];
    return { status: 400, error: 'invalid call', issues };
  }
  const { eta, expires, ...rest } = parsed.data;
  const call = {
    ...rest,
    ...(eta === undefined ? {} : { eta: new Date(eta) }),
    ...(expires === undefined
      ? {}
      : { expires: typeof expires === 'string' ? new Date(expires) : expires }),
  } as TaskCallInput<never, never>;
  let message: ReturnType<typeof lookup.task.createMessage>;
  try {
    message = lookup.task.createMessage(call);
  } catch (error) {
    if (error instanceof InvalidArgumentsError) {
      return { status: 400, error: error.message, issues: error.issues };
    }
    if (error instanceof PayloadTooLargeError) return { status: 413, error: error.message };
    throw error;
  }
  const stamped = stampMessages([message], traceContext());
  try {
    await broker.publish(stamped);
  } catch (error) {
    if (error instanceof BrokerError) return { status: 503, error: error.message };
    throw error;
  }
  await announce?.(stamped);
  return { status: 202, id: message.id, task: message.task };
}

/**
 * The task's own schema issues of a call that is wrong elsewhere too (an unknown key, a bad
 * countdown), so the client hears of every field at once. Arguments of the wrong shape are
 * already reported by the call schema.
 */
function argumentIssues(task: Task, input: unknown): FieldIssue[] {
  if (!isPlainObject(input)) return [];
  const { args = [], kwargs = {} } = input;
  if (!Array.isArray(args) || !isPlainObject(kwargs)) return [];
  const checked = task.parseArguments(args, kwargs);
  return checked.ok ? [] : [...checked.error.issues];
}
