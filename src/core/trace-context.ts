/**
 * Trace context across the queue: the headers a producer records on a message (W3C
 * `traceparent`/`tracestate`, AWS `X-Amzn-Trace-Id`, Sentry's `sentry-trace` and `baggage`), how
 * they follow a message into its retries and workflow continuations, and the trace id a log line
 * shows.
 *
 * They ride as extra message headers, which Celery's worker keeps on `task.request` and otherwise
 * ignores, so messages stay wire-compatible. A Python worker does not copy a message's headers onto
 * the messages it sends next; it does send a signature's `options.headers` (Celery's
 * `send_task_message` merges them into the header table), so the context is also written into the
 * signatures a message carries in its embed, and a chain keeps it through a Python step.
 * Values are carried as received, never re-encoded: a Sentry producer's headers reach the next
 * Sentry consumer byte for byte.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { JsonObject, JsonValue } from './json.js';
import type { Embed, TaskMessage } from './message.js';

/** The headers of a trace context, in the spelling producers write them. */
export const TRACE_HEADERS = [
  'traceparent',
  'tracestate',
  'X-Amzn-Trace-Id',
  'sentry-trace',
  'baggage',
] as const;

/** One of {@link TRACE_HEADERS}. */
export type TraceHeader = (typeof TRACE_HEADERS)[number];

/** A trace context: the trace headers present, each a string. */
export type TraceContext = Readonly<Partial<Record<TraceHeader, string>>>;

/** Our header with the instant a producer of ours published the message (ISO 8601). */
export const SENT_HEADER = 'x-sc-sent';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const XRAY_ROOT = /(?:^|;)\s*Root=1-([0-9a-f]{8})-([0-9a-f]{24})/i;
const XRAY_PARENT = /(?:^|;)\s*Parent=([0-9a-f]{16})/i;
const XRAY_SAMPLED = /(?:^|;)\s*Sampled=1/;
const SENTRY_TRACE = /^([0-9a-f]{32})(?:-([0-9a-f]{16}))?/;

/** The trace context a message carries: its trace headers that are strings. */
export function traceContextOf(message: Pick<TaskMessage, 'extraHeaders'>): TraceContext {
  const context: Partial<Record<TraceHeader, string>> = {};
  for (const header of TRACE_HEADERS) {
    const value = message.extraHeaders[header];
    if (typeof value === 'string' && value !== '') context[header] = value;
  }
  return context;
}

/**
 * The trace context of an AWS trace header (`_X_AMZN_TRACE_ID` in Lambda): the header itself, and
 * its W3C `traceparent` (the X-Ray trace id `1-<8 hex>-<24 hex>` is the W3C trace id with the
 * dashes removed, as X-Ray documents), so consumers that read only W3C see the same trace.
 */
export function traceContextFromXRay(header: string | undefined): TraceContext {
  if (!header) return {};
  const root = XRAY_ROOT.exec(header);
  const parent = XRAY_PARENT.exec(header);
  if (!root || !parent) return { 'X-Amzn-Trace-Id': header };
  const flags = XRAY_SAMPLED.test(header) ? '01' : '00';
  const traceparent = `00-${root[1]}${root[2]}-${parent[1]}-${flags}`.toLowerCase();
  return { traceparent, 'X-Amzn-Trace-Id': header };
}

/** The context of the task running in this async scope (see {@link runWithTraceContext}). */
const RUNNING = new AsyncLocalStorage<TraceContext>();

/**
 * Runs `fn` as the run of a message with `context`: what it publishes without a context of its
 * own carries `context` on, so a task's children stay in its trace.
 */
export function runWithTraceContext<T>(context: TraceContext, fn: () => T): T {
  return RUNNING.run(context, fn);
}

/**
 * The context a producer records when the caller gives none: the running task's (a publish from
 * inside a task), else the Lambda invocation's trace (`_X_AMZN_TRACE_ID`, set by the runtime per
 * invoke), else nothing.
 */
export function ambientTraceContext(env: NodeJS.ProcessEnv = process.env): TraceContext {
  const running = RUNNING.getStore();
  if (running && Object.keys(running).length > 0) return running;
  return traceContextFromXRay(env._X_AMZN_TRACE_ID);
}

/** Where a trace is: its id (32 hex, W3C form) and the span that sent the message. */
export interface TraceIds {
  readonly traceId: string;
  /** The producer's span (W3C parent-id, X-Ray Parent, Sentry span), when known. */
  readonly parentSpanId: string | null;
}

/**
 * The trace id a log line shows: from `traceparent`, else the AWS header, else `sentry-trace`;
 * `null` without a readable one.
 */
export function traceIdsOf(context: TraceContext): TraceIds | null {
  const w3c = TRACEPARENT.exec(context.traceparent ?? '');
  if (w3c?.[2] && w3c[3]) return { traceId: w3c[2], parentSpanId: w3c[3] };
  const xray = context['X-Amzn-Trace-Id'] ?? '';
  const root = XRAY_ROOT.exec(xray);
  if (root) {
    const parent = XRAY_PARENT.exec(xray)?.[1] ?? null;
    return { traceId: `${root[1]}${root[2]}`.toLowerCase(), parentSpanId: parent };
  }
  const sentry = SENTRY_TRACE.exec(context['sentry-trace'] ?? '');
  if (sentry?.[1]) return { traceId: sentry[1], parentSpanId: sentry[2] ?? null };
  return null;
}

/**
 * `message` with `context` recorded: each trace header the message lacks is added to its headers,
 * to the nested `headers` header (all a Celery worker's `retry()` re-sends of a message's own
 * headers: `Context.headers`, as sentry-sdk writes it too), and to the `options.headers` of
 * every signature in its embed (callbacks, errbacks, chain steps, chord body), so whichever
 * worker sends them next, ours or Celery's, sends the context along. Headers the message or a
 * signature already has win: a context is never overwritten.
 *
 * @param sentAt - also record when it was published ({@link SENT_HEADER}); queue latency counts from it
 */
export function withTraceContext(
  message: TaskMessage,
  context: TraceContext,
  sentAt?: Date,
): TaskMessage {
  const entries = Object.entries(context).filter(([, value]) => typeof value === 'string');
  if (entries.length === 0 && sentAt === undefined) return message;
  const extraHeaders = { ...Object.fromEntries(entries), ...message.extraHeaders };
  if (sentAt !== undefined) extraHeaders[SENT_HEADER] = sentAt.toISOString();
  if (entries.length === 0) return { ...message, extraHeaders };
  const headers = Object.fromEntries(entries) as JsonObject;
  // The context the message ends up with (its own headers won), as the nested copy.
  const effective = traceContextOf({ extraHeaders }) as JsonObject;
  extraHeaders.headers = { ...effective, ...plainObject(message.extraHeaders.headers) };
  return { ...message, extraHeaders, embed: stampEmbed(message.embed, headers) };
}

function stampEmbed(embed: Embed, headers: JsonObject): Embed {
  const list = (items: JsonValue[] | null) =>
    items ? items.map((sig) => stamp(sig, headers)) : null;
  return {
    callbacks: list(embed.callbacks),
    errbacks: list(embed.errbacks),
    chain: list(embed.chain),
    chord: embed.chord === null ? null : stamp(embed.chord, headers),
  };
}

/** A signature dict with `headers` added to its `options.headers`; anything else as it is. */
function stamp(sig: JsonValue, headers: JsonObject): JsonValue {
  if (sig === null || typeof sig !== 'object' || Array.isArray(sig)) return sig;
  const options = sig.options;
  if (
    options !== undefined &&
    (options === null || typeof options !== 'object' || Array.isArray(options))
  ) {
    return sig;
  }
  return {
    ...sig,
    options: { ...options, headers: { ...headers, ...plainObject(options?.headers) } },
  };
}

/** `value` when it is a plain object (a JSON object, an AMQP table), else an empty one. */
function plainObject(value: unknown): JsonObject {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : {};
}
