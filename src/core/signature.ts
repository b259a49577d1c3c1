/**
 * Celery signatures as plain data: the dicts that ride in a message's `embed` (`callbacks`,
 * `errbacks`, `chain`, `chord`) and that `chain`/`group`/`chord` are made of.
 *
 * A signature is Celery's own JSON shape, never a class: a Python worker reads ours with
 * `Signature.from_dict`, and ours are read back the same way. Its `options` use Celery's
 * snake_case keys (`task_id`, `link_error`, `group_id`), because they go on the wire verbatim;
 * {@link SignatureOptions} is the camelCase way to write them.
 */
import { InvalidArgumentsError } from './errors.js';
import { findJsonIssues, isPlainObject, type JsonObject, type JsonValue } from './json.js';
import type { TimeLimit } from './message.js';
import { formatCeleryTime } from './time.js';

/**
 * Celery's signature dict (`celery.canvas.Signature`), with its six keys in Celery's order.
 *
 * `subtask_type` is `null` for a plain task, else `chain`, `group` or `chord` (composites keep
 * their parts in `kwargs`). `immutable` signatures ignore the parent's result.
 */
export interface SignatureDict {
  /** Task name; `celery.chain` / `celery.group` / `celery.chord` for composites. */
  readonly task: string;
  /** Positional arguments; a parent's result is prepended unless {@link immutable}. */
  readonly args: readonly JsonValue[];
  /** Keyword arguments. */
  readonly kwargs: JsonObject;
  /** Publishing options, Celery's keys (`task_id`, `queue`, `countdown`, `link`…). */
  readonly options: JsonObject;
  /** `null`, `chain`, `group` or `chord` (Celery also has `chunks`, `xmap`, `xstarmap`). */
  readonly subtask_type: string | null;
  /** When true the signature keeps its own args (Celery's `si()`). */
  readonly immutable: boolean;
}

/**
 * Publishing options of a signature, written into its Celery `options` when it is built.
 *
 * Each maps to one Celery option: `id` → `task_id`, `eta` → ISO text, `expires` → seconds or ISO
 * text, `timeLimit` → `time_limit`/`soft_time_limit`, `linkError` → `link_error`,
 * `ignoreResult` → `ignore_result`.
 */
export interface SignatureOptions {
  /** Task id. @defaultValue derived when the signature is applied */
  readonly id?: string;
  /** Queue. @defaultValue the declared task's queue, else `celery` */
  readonly queue?: string;
  /** Seconds from when it is sent. */
  readonly countdown?: number;
  /** Absolute time to run at. */
  readonly eta?: Date;
  /** Seconds from when it is sent, or an absolute time. */
  readonly expires?: number | Date;
  /** Message priority, 0–255. */
  readonly priority?: number;
  /** Called with the result on success. */
  readonly link?: SignatureDict | readonly SignatureDict[];
  /** Called with the task id on failure. */
  readonly linkError?: SignatureDict | readonly SignatureDict[];
  /** Ask workers to store no result. */
  readonly ignoreResult?: boolean;
  /** `[hard, soft]` time limits in seconds. */
  readonly timeLimit?: TimeLimit;
  /** Name shown in logs instead of the task's. */
  readonly shadow?: string;
}

/** What {@link signature} takes besides the task name. */
export interface SignatureInit {
  /** @defaultValue `[]` */
  readonly args?: readonly JsonValue[];
  /** @defaultValue `{}` */
  readonly kwargs?: JsonObject;
  /** @defaultValue `{}` */
  readonly options?: SignatureOptions;
  /** @defaultValue false */
  readonly immutable?: boolean;
}

/** The `subtask_type`s this package runs: plain, `chain`, `group`, `chord`. */
export const SUPPORTED_SUBTASK_TYPES: ReadonlySet<string | null> = new Set([
  null,
  'chain',
  'group',
  'chord',
]);

/**
 * Builds a signature of a task by name, for tasks this app does not declare (Celery's
 * `signature('name', args, kwargs, options)`); declared tasks have `task.s()` / `task.si()`.
 *
 * Arguments are checked to be plain JSON only: the task's schemas live in another app.
 *
 * @throws InvalidArgumentsError when args, kwargs or options are not plain JSON, or an option
 *   is out of range
 * @example
 * const notify = signature('mail.tasks.notify', { args: ['ops'], options: { queue: 'mail' } });
 * await publisher.applyAsync(sendReport, { kwargs: { id: 1 }, link: notify });
 */
export function signature(task: string, init: SignatureInit = {}): SignatureDict {
  const args = init.args ?? [];
  const kwargs = init.kwargs ?? {};
  const issues = [
    ...(typeof task === 'string' && task !== '' ? [] : [{ path: 'task', message: 'required' }]),
    ...findJsonIssues(args, 'args'),
    ...findJsonIssues(kwargs, 'kwargs'),
    ...signatureOptionIssues(init.options ?? {}),
  ];
  if (issues.length > 0) throw new InvalidArgumentsError(String(task), issues);
  return {
    task,
    args: [...args],
    kwargs: { ...kwargs },
    options: celeryOptions(init.options ?? {}),
    subtask_type: null,
    immutable: init.immutable ?? false,
  };
}

/**
 * Writes {@link SignatureOptions} as Celery option keys. Unset options are left out, as Celery
 * drops options given `None`.
 */
export function celeryOptions(options: SignatureOptions): JsonObject {
  const out: JsonObject = {};
  if (options.id !== undefined) out.task_id = options.id;
  if (options.queue !== undefined) out.queue = options.queue;
  if (options.countdown !== undefined) out.countdown = options.countdown;
  if (options.eta !== undefined) out.eta = formatCeleryTime(options.eta);
  if (options.expires !== undefined) {
    out.expires =
      options.expires instanceof Date ? formatCeleryTime(options.expires) : options.expires;
  }
  if (options.priority !== undefined) out.priority = options.priority;
  if (options.timeLimit?.[0] != null) out.time_limit = options.timeLimit[0];
  if (options.timeLimit?.[1] != null) out.soft_time_limit = options.timeLimit[1];
  if (options.shadow !== undefined) out.shadow = options.shadow;
  if (options.ignoreResult !== undefined) out.ignore_result = options.ignoreResult;
  if (options.link !== undefined) out.link = signatureList(options.link);
  if (options.linkError !== undefined) out.link_error = signatureList(options.linkError);
  return out;
}

/** Problems with {@link SignatureOptions}, as field issues under `options`. */
export function signatureOptionIssues(
  options: SignatureOptions,
): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const finite = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
  const validDate = (value: unknown) => value instanceof Date && finite(value.getTime());
  if (options.id !== undefined && (typeof options.id !== 'string' || options.id === '')) {
    issues.push({ path: 'options.id', message: 'must be a non-empty string' });
  }
  if (options.queue !== undefined && (typeof options.queue !== 'string' || options.queue === '')) {
    issues.push({ path: 'options.queue', message: 'must be a non-empty string' });
  }
  if (options.countdown !== undefined && !finite(options.countdown)) {
    issues.push({ path: 'options.countdown', message: 'must be a finite number of seconds' });
  }
  if (options.eta !== undefined && !validDate(options.eta)) {
    issues.push({ path: 'options.eta', message: 'must be a valid Date' });
  }
  const { expires } = options;
  if (expires !== undefined && !(expires instanceof Date ? validDate(expires) : finite(expires))) {
    issues.push({ path: 'options.expires', message: 'must be seconds or a valid Date' });
  }
  const { priority } = options;
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 255)) {
    issues.push({ path: 'options.priority', message: 'must be an integer from 0 to 255' });
  }
  for (const [key, value] of [
    ['link', options.link],
    ['linkError', options.linkError],
  ] as const) {
    if (value === undefined) continue;
    const list = Array.isArray(value) ? value : [value];
    list.forEach((item, index) => {
      const parsed = parseSignature(item, `options.${key}[${index}]`);
      if (!parsed.ok) issues.push({ path: `options.${key}[${index}]`, message: parsed.reason });
    });
  }
  return issues;
}

/**
 * A signature as a fresh JSON object with Celery's key order, ready to embed in a message.
 * (A {@link SignatureDict} is read-only, so it is not a `JsonValue` by type.)
 */
export function signatureJson(sig: SignatureDict): JsonObject {
  return {
    task: sig.task,
    args: [...sig.args],
    kwargs: sig.kwargs,
    options: sig.options,
    subtask_type: sig.subtask_type,
    immutable: sig.immutable,
  };
}

/** One signature or a list of them as a JSON list (Celery's `maybe_list`). */
export function signatureList(value: SignatureDict | readonly SignatureDict[]): JsonValue[] {
  const list: readonly SignatureDict[] = isSignatureArray(value) ? value : [value];
  return list.map(signatureJson);
}

function isSignatureArray(
  value: SignatureDict | readonly SignatureDict[],
): value is readonly SignatureDict[] {
  return Array.isArray(value);
}

/**
 * Reads a signature dict that came off the wire (an `embed` entry, a chain step, a chord body),
 * the way `Signature.from_dict` would: missing `args`/`kwargs`/`options` default to empty,
 * unknown option keys are kept. Composites are checked for their parts (`kwargs.tasks` of a
 * chain or group, `kwargs.header`/`kwargs.body` of a chord), recursively. The subtask type is not
 * checked against {@link SUPPORTED_SUBTASK_TYPES}: that is the caller's decision.
 *
 * @param value - the decoded JSON
 * @param path - where it was found, for the reason (`embed.callbacks[0]`)
 * @returns the signature with Celery's key order, or why it is not one
 */
export function parseSignature(
  value: unknown,
  path: string,
): { ok: true; signature: SignatureDict } | { ok: false; reason: string } {
  const fail = (what: string) => ({ ok: false as const, reason: `${path}: ${what}` });
  if (!isPlainObject(value)) return fail('not a signature object');
  const { task, args = [], kwargs = {}, options = {}, subtask_type = null } = value;
  const immutable = value.immutable ?? false;
  if (typeof task !== 'string' || task === '') return fail('task must be a non-empty string');
  if (!Array.isArray(args)) return fail('args must be a list');
  if (!isPlainObject(kwargs)) return fail('kwargs must be an object');
  if (!isPlainObject(options)) return fail('options must be an object');
  if (subtask_type !== null && typeof subtask_type !== 'string') {
    return fail('subtask_type must be a string or null');
  }
  if (typeof immutable !== 'boolean') return fail('immutable must be a boolean');
  const parts = compositeIssue(subtask_type, kwargs, path);
  if (parts !== null) return { ok: false, reason: parts };
  return {
    ok: true,
    signature: {
      task,
      args: args as JsonValue[],
      kwargs: kwargs as JsonObject,
      options: options as JsonObject,
      subtask_type,
      immutable,
    },
  };
}

function compositeIssue(
  type: string | null,
  kwargs: Record<string, unknown>,
  path: string,
): string | null {
  const every = (list: unknown, at: string): string | null => {
    if (!Array.isArray(list)) return `${at}: must be a list of signatures`;
    for (const [index, item] of list.entries()) {
      const parsed = parseSignature(item, `${at}[${index}]`);
      if (!parsed.ok) return parsed.reason;
    }
    return null;
  };
  if (type === 'chain' || type === 'group') return every(kwargs.tasks, `${path}.kwargs.tasks`);
  if (type !== 'chord') return null;
  // A chord's header is a list of signatures, or a group dict (what `chord(group(...))` keeps).
  const header = kwargs.header;
  const headerIssue = Array.isArray(header)
    ? every(header, `${path}.kwargs.header`)
    : checked(parseSignature(header, `${path}.kwargs.header`));
  return headerIssue ?? checked(parseSignature(kwargs.body, `${path}.kwargs.body`));
}

function checked(result: { ok: true } | { ok: false; reason: string }): string | null {
  return result.ok ? null : result.reason;
}
