/**
 * The broker-neutral task message: one Celery protocol v2 message, as both brokers carry it.
 *
 * Field names are camelCase versions of Celery's headers (`root_id` → `rootId`); the codec
 * modules map them to and from each broker's wire shape. Workflows (`link`, `chain`, `chord`)
 * ride in `embed` as Celery signature dicts (see `signature.ts` and `canvas.ts`).
 */
import { hostname } from 'node:os';
import type { JsonObject, JsonValue } from './json.js';
import { pythonRepr } from './python-repr.js';

/** Celery's `embed`, the third item of the body: workflow continuations. */
export interface Embed {
  /** Signatures to call on success (`link`). */
  readonly callbacks: JsonValue[] | null;
  /** Signatures to call on failure (`link_error`). */
  readonly errbacks: JsonValue[] | null;
  /** Remaining chain steps, last step first. */
  readonly chain: JsonValue[] | null;
  /** Chord body signature. */
  readonly chord: JsonValue | null;
}

/** The embed Celery writes when there is no workflow. */
export const EMPTY_EMBED: Embed = Object.freeze({
  callbacks: null,
  errbacks: null,
  chain: null,
  chord: null,
});

/** Celery's `timelimit` header: `[hard, soft]` in seconds (hard first, despite the docs). */
export type TimeLimit = readonly [hard: number | null, soft: number | null];

/** A Celery task message, independent of the broker that carries it. */
export interface TaskMessage {
  /** Task id (uuid); the same across retries. Header `id`, property `correlation_id`. */
  readonly id: string;
  /** Registered task name. Header `task`. */
  readonly task: string;
  /** Positional arguments. */
  readonly args: readonly JsonValue[];
  /** Keyword arguments. */
  readonly kwargs: JsonObject;
  /**
   * Workflow continuations (callbacks, errbacks, chain, chord): sent on after the run by
   * `continuations.ts`.
   */
  readonly embed: Embed;
  /** How many times this task has been retried: 0 on the first run. */
  readonly retries: number;
  /** Do not run before this instant. */
  readonly eta: Date | null;
  /** Discard if received or started after this instant. */
  readonly expires: Date | null;
  /** First task of the workflow; own id for a top-level call. */
  readonly rootId: string | null;
  /** Task that sent this one; `null` from outside a task. */
  readonly parentId: string | null;
  /** Group id when part of a group. */
  readonly group: string | null;
  /** Position in the group. */
  readonly groupIndex: number | null;
  /** Name shown in logs instead of `task`. */
  readonly shadow: string | null;
  /** `[hard, soft]` time limits in seconds. */
  readonly timeLimit: TimeLimit;
  /** Display form of the args (Python repr on Celery's side; JSON text on ours). */
  readonly argsrepr: string;
  /** Display form of the kwargs. */
  readonly kwargsrepr: string;
  /** Sender node, `<name><pid>@<host>`. */
  readonly origin: string | null;
  /** Producer language (`py`, `ts`); informational. */
  readonly lang: string;
  /** Ask workers to store no result. */
  readonly ignoreResult: boolean;
  /** Message priority, 0–255 (0–9 meaningful on Redis, where 0 runs first). */
  readonly priority: number;
  /** `reply_to` property: only the rpc result backend reads it. */
  readonly replyTo: string | null;
  /** Exchange the message was published to (`""` for Celery's default routing). */
  readonly exchange: string;
  /** Routing key; with the default exchange, the queue name. */
  readonly routingKey: string;
  /** The broker delivered this message before (restored after a crash or a warm shutdown). */
  readonly redelivered: boolean;
  /** Protocol of the message as received: 1 (legacy body-only) or 2. We always write 2. */
  readonly protocol: 1 | 2;
  /** Headers we do not model (e.g. Celery ≥ 5.3 `stamps`), kept so retries carry them on. */
  readonly extraHeaders: Readonly<Record<string, unknown>>;
  /**
   * The body exactly as received, when it can be sent again as is. Retries re-use it so that a
   * Python peer gets back the bytes it wrote (kombu ≥ 5.3 tagged values, bare `NaN`).
   */
  readonly rawBody: string | null;
}

/** What a caller says when it publishes a task; everything else gets Celery's defaults. */
export interface TaskCall {
  /** Registered task name. */
  readonly task: string;
  /** Queue (routing key on the default exchange). */
  readonly queue: string;
  /** Positional arguments. @defaultValue `[]` */
  readonly args?: readonly JsonValue[];
  /** Keyword arguments. @defaultValue `{}` */
  readonly kwargs?: JsonObject;
  /** Task id. @defaultValue a new uuid4 */
  readonly id?: string;
  /** Seconds from now; becomes an absolute `eta` (it never appears on the wire). */
  readonly countdown?: number;
  /** Absolute time to run at; wins over `countdown`. */
  readonly eta?: Date;
  /** Seconds from now, or an absolute time, after which the task is discarded. */
  readonly expires?: number | Date;
  /** Message priority. @defaultValue 0 */
  readonly priority?: number;
  /** `[hard, soft]` time limits in seconds. */
  readonly timeLimit?: TimeLimit;
  /** Id of the task that sends this one, when publishing from inside a task. */
  readonly parentId?: string | null;
  /** Root of the workflow. @defaultValue the parent's root, else the own id */
  readonly rootId?: string | null;
  /** Display name in logs. */
  readonly shadow?: string | null;
  /** Ask workers to store no result. @defaultValue false */
  readonly ignoreResult?: boolean;
  /** Workflow continuations. @defaultValue none */
  readonly embed?: Embed;
  /** Group id, when the call is a member of a group or chord header. @defaultValue none */
  readonly group?: string | null;
  /** Position in the group (Celery's `group_index`). @defaultValue none */
  readonly groupIndex?: number | null;
  /** `reply_to` property (only Celery's rpc result backend reads it). @defaultValue none */
  readonly replyTo?: string | null;
  /**
   * Extra headers (Celery's `headers` option), e.g. a trace context; a header Celery writes
   * itself always wins over one of these. @defaultValue none
   */
  readonly headers?: Readonly<Record<string, unknown>>;
}

/** Our `origin` header: like Celery's `gen<pid>@<host>`, with a `ts` prefix. */
export const DEFAULT_ORIGIN = `ts${process.pid}@${hostname()}`;

/**
 * Builds the message for a task call, filling in what Celery's `send_task` fills in.
 *
 * `countdown` becomes an absolute `eta`; `expires` in seconds becomes an absolute time; a
 * top-level call is its own root.
 *
 * @param call - what to run and how
 * @param now - the current time, injectable for tests
 * @example
 * const message = createTaskMessage({ task: 'ingest.save_event', queue: 'events', kwargs: { event_id: 'e1' } });
 */
export function createTaskMessage(call: TaskCall, now: Date = new Date()): TaskMessage {
  const id = call.id ?? crypto.randomUUID();
  const args = call.args ?? [];
  const kwargs = call.kwargs ?? {};
  return {
    id,
    task: call.task,
    args,
    kwargs,
    embed: call.embed ?? EMPTY_EMBED,
    retries: 0,
    eta: resolveEta(call, now),
    expires: resolveExpires(call.expires, now),
    rootId: call.rootId ?? id,
    parentId: call.parentId ?? null,
    group: call.group ?? null,
    groupIndex: call.groupIndex ?? null,
    shadow: call.shadow ?? null,
    timeLimit: call.timeLimit ?? [null, null],
    // Python's repr, cut at Celery's argsrepr_maxsize, as `send_task` writes them: Flower and
    // `celery events` show these strings as they are.
    argsrepr: pythonRepr(args),
    kwargsrepr: pythonRepr(kwargs),
    origin: DEFAULT_ORIGIN,
    lang: 'ts',
    ignoreResult: call.ignoreResult ?? false,
    priority: call.priority ?? 0,
    replyTo: call.replyTo ?? null,
    exchange: '',
    routingKey: call.queue,
    redelivered: false,
    protocol: 2,
    extraHeaders: call.headers ?? {},
    rawBody: null,
  };
}

function resolveEta(call: TaskCall, now: Date): Date | null {
  if (call.eta) return call.eta;
  if (call.countdown !== undefined) return new Date(now.getTime() + call.countdown * 1000);
  return null;
}

function resolveExpires(expires: number | Date | undefined, now: Date): Date | null {
  if (expires === undefined) return null;
  if (expires instanceof Date) return expires;
  return new Date(now.getTime() + expires * 1000);
}

/**
 * Builds the message that retries `message`, exactly as Celery's `Task.retry` does: same id,
 * args, kwargs, root and priority, `retries + 1`, `eta` = the due time, `parent_id` = the task's
 * own id, back to the queue it came from, not marked redelivered.
 *
 * @param message - the message whose run asked for a retry
 * @param eta - when the retry is due
 */
export function createRetryMessage(message: TaskMessage, eta: Date): TaskMessage {
  return {
    ...message,
    retries: message.retries + 1,
    eta,
    parentId: message.id,
    rootId: message.rootId ?? message.id,
    origin: DEFAULT_ORIGIN,
    redelivered: false,
    // A v1 body cannot be re-sent inside a v2 message; it is re-serialised instead.
    rawBody: message.protocol === 2 ? message.rawBody : null,
    protocol: 2,
  };
}
