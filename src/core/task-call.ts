/**
 * From a call of a declared task to what is sent: the checked message (`createMessage`), and
 * the task's signatures (`s()`, `si()`). Internal to `task.ts`, which owns the public types.
 */
import { type FieldIssue, InvalidArgumentsError, PayloadTooLargeError } from './errors.js';
import { findJsonIssues, type JsonObject, type JsonValue } from './json.js';
import { createTaskMessage, EMPTY_EMBED, type Embed, type TaskMessage } from './message.js';
import {
  celeryOptions,
  parseSignature,
  type SignatureDict,
  type SignatureOptions,
  signatureList,
  signatureOptionIssues,
} from './signature.js';

/** What a call may say: the fields {@link buildCallMessage} reads. */
export interface CallFields {
  readonly args?: readonly unknown[];
  readonly kwargs?: Record<string, unknown>;
  readonly id?: string;
  readonly countdown?: number;
  readonly eta?: Date;
  readonly expires?: number | Date;
  readonly priority?: number;
  readonly parentId?: string | null;
  readonly rootId?: string | null;
  readonly queue?: string;
  readonly link?: SignatureDict | readonly SignatureDict[];
  readonly linkError?: SignatureDict | readonly SignatureDict[];
  readonly ignoreResult?: boolean;
}

/** The task-level defaults a call falls back on. */
export interface CallDefaults {
  readonly name: string;
  readonly queue: string;
  readonly expires?: number | undefined;
  readonly priority?: number | undefined;
  readonly timeLimit?: number | undefined;
  readonly softTimeLimit?: number | undefined;
  readonly maxArgumentBytes: number;
  readonly ignoreResult: boolean;
}

/**
 * Builds and checks the message of one call: plain JSON, the task's schema issues
 * (`schemaIssues`), options in range, and the encoded body, embed included, under
 * `maxArgumentBytes`.
 *
 * @throws InvalidArgumentsError naming every bad field
 * @throws PayloadTooLargeError when the encoded body is over the limit
 */
export function buildCallMessage(
  task: CallDefaults,
  call: CallFields,
  schemaIssues: readonly FieldIssue[],
  now: Date,
): TaskMessage {
  const args = call.args ?? [];
  const kwargs = call.kwargs ?? {};
  const issues = [
    ...findJsonIssues(args, 'args'),
    ...findJsonIssues(kwargs, 'kwargs'),
    ...findCallIssues(call),
    ...schemaIssues,
  ];
  if (issues.length > 0) throw new InvalidArgumentsError(task.name, issues);
  const embed = embedOf(call);
  const body = JSON.stringify([args, kwargs, embed]);
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > task.maxArgumentBytes) {
    throw new PayloadTooLargeError(task.name, bytes, task.maxArgumentBytes);
  }
  const expires = call.expires ?? task.expires;
  const message = createTaskMessage(
    {
      task: task.name,
      queue: call.queue ?? task.queue,
      args: args as readonly JsonValue[],
      kwargs: kwargs as JsonObject,
      ...(call.id === undefined ? {} : { id: call.id }),
      ...(call.countdown === undefined ? {} : { countdown: call.countdown }),
      ...(call.eta === undefined ? {} : { eta: call.eta }),
      ...(expires === undefined ? {} : { expires }),
      priority: call.priority ?? task.priority ?? 0,
      timeLimit: [task.timeLimit ?? null, task.softTimeLimit ?? null],
      parentId: call.parentId ?? null,
      rootId: call.rootId ?? null,
      ignoreResult: call.ignoreResult ?? task.ignoreResult,
      embed,
    },
    now,
  );
  // The body was serialised once to measure it; the codec re-uses that text.
  return { ...message, rawBody: body };
}

function embedOf(call: CallFields): Embed {
  if (call.link === undefined && call.linkError === undefined) return EMPTY_EMBED;
  return {
    ...EMPTY_EMBED,
    callbacks: call.link === undefined ? null : nonEmpty(signatureList(call.link)),
    errbacks: call.linkError === undefined ? null : nonEmpty(signatureList(call.linkError)),
  };
}

function nonEmpty(list: JsonValue[]): JsonValue[] | null {
  return list.length > 0 ? list : null;
}

/**
 * A signature of a declared task. It names the task's queue, so that a Celery worker that sends
 * it (as a callback or a chain step) routes it to us rather than to its own default queue.
 */
export function taskSignature(
  task: CallDefaults,
  call: SignatureOptions & { readonly args?: readonly unknown[]; readonly kwargs?: object },
  immutable: boolean,
  schemaIssues: readonly FieldIssue[],
): SignatureDict {
  const { args = [], kwargs = {}, ...options } = call;
  const issues = [
    ...findJsonIssues(args, 'args'),
    ...findJsonIssues(kwargs, 'kwargs'),
    ...signatureOptionIssues(options),
    ...schemaIssues,
  ];
  if (issues.length > 0) throw new InvalidArgumentsError(task.name, issues);
  return {
    task: task.name,
    args: [...(args as readonly JsonValue[])],
    kwargs: { ...(kwargs as JsonObject) },
    options: celeryOptions({ ...options, queue: options.queue ?? task.queue }),
    subtask_type: null,
    immutable,
  };
}

/** Range and type problems of a call's publishing options. */
export function findCallIssues(call: CallFields): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const finite = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
  if (call.countdown !== undefined && !finite(call.countdown)) {
    issues.push({ path: 'countdown', message: 'must be a finite number of seconds' });
  }
  if (call.eta !== undefined && !(call.eta instanceof Date && finite(call.eta.getTime()))) {
    issues.push({ path: 'eta', message: 'must be a valid Date' });
  }
  const expires = call.expires;
  if (
    expires !== undefined &&
    !(expires instanceof Date ? finite(expires.getTime()) : finite(expires))
  ) {
    issues.push({ path: 'expires', message: 'must be seconds or a valid Date' });
  }
  if (
    call.priority !== undefined &&
    !(Number.isInteger(call.priority) && call.priority >= 0 && call.priority <= 255)
  ) {
    issues.push({ path: 'priority', message: 'must be an integer from 0 to 255' });
  }
  if (call.id !== undefined && (typeof call.id !== 'string' || call.id === '')) {
    issues.push({ path: 'id', message: 'must be a non-empty string' });
  }
  for (const [key, value] of [
    ['link', call.link],
    ['linkError', call.linkError],
  ] as const) {
    const list: readonly unknown[] =
      value === undefined ? [] : Array.isArray(value) ? value : [value];
    list.forEach((item, index) => {
      const parsed = parseSignature(item, `${key}[${index}]`);
      if (!parsed.ok) issues.push({ path: `${key}[${index}]`, message: parsed.reason });
    });
  }
  return issues;
}
