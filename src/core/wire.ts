/**
 * Celery protocol v2 on the wire, independent of the broker: the header table, the
 * `[args, kwargs, embed]` body, and decoding what any Celery producer (v2, legacy v1, kombu 5.2 or
 * ≥ 5.3 JSON) may have written. The Redis and AMQP codecs only add their transport framing.
 *
 * Decoding never throws: a defective message becomes a typed {@link DecodeFailure} with a reason
 * a person can act on, so one bad message cannot take down a batch.
 */
import {
  INVALID_MESSAGE_REASONS,
  InvalidMessageError,
  type InvalidMessageReason,
} from './errors.js';
import {
  isPlainObject,
  type JsonObject,
  type JsonValue,
  parsePythonJson,
  untagKombuJson,
} from './json.js';
import { EMPTY_EMBED, type Embed, type TaskMessage, type TimeLimit } from './message.js';
import { formatCeleryTime, parseCeleryTime } from './time.js';

/** The only content type we read or write: JSON. Pickle and YAML are refused, always. */
export const CONTENT_TYPE = 'application/json';
/** The only content encoding Celery uses with JSON. */
export const CONTENT_ENCODING = 'utf-8';

/**
 * Celery's task headers, in the order Celery 5.2 writes them, with `null` for unset values.
 * Values are plain JS; the AMQP codec types the integers.
 */
export type CeleryHeaders = Record<string, unknown>;

/**
 * Builds the header table of a message: every key Celery writes, in Celery's order, then any
 * extra headers the message carried in.
 */
export function toCeleryHeaders(message: TaskMessage): CeleryHeaders {
  const headers: CeleryHeaders = {
    lang: message.lang,
    task: message.task,
    id: message.id,
    shadow: message.shadow,
    eta: message.eta ? formatCeleryTime(message.eta) : null,
    expires: message.expires ? formatCeleryTime(message.expires) : null,
    group: message.group,
    group_index: message.groupIndex,
    retries: message.retries,
    timelimit: [message.timeLimit[0], message.timeLimit[1]],
    root_id: message.rootId,
    parent_id: message.parentId,
    argsrepr: message.argsrepr,
    kwargsrepr: message.kwargsrepr,
    origin: message.origin,
    ignore_result: message.ignoreResult,
  };
  // kombu's restore marks a message redelivered in its headers; a message we re-queue (parked
  // until its eta) keeps that mark, so a duplicate stays recognisable when it finally runs.
  if (message.redelivered) headers.redelivered = true;
  // Extras go last, as Celery ≥ 5.3 writes `stamped_headers`/`stamps`; a modelled key always wins.
  const extras = Object.entries(message.extraHeaders).filter(
    ([key]) => !Object.hasOwn(headers, key),
  );
  return { ...headers, ...Object.fromEntries(extras) };
}

/**
 * Serialises the body `[args, kwargs, embed]`, or returns the body as received when the message
 * still carries it (retries of messages from Python keep Python's bytes).
 */
export function serializeBody(message: TaskMessage): string {
  return message.rawBody ?? JSON.stringify([message.args, message.kwargs, message.embed]);
}

/** A message decoded into the task model. */
export interface DecodeSuccess {
  readonly ok: true;
  readonly message: TaskMessage;
}

/**
 * A message that is not a usable Celery task message. Whatever could be read of its identity is
 * kept, so the dead-letter entry can say which task it was.
 */
export interface DecodeFailure {
  readonly ok: false;
  readonly error: InvalidMessageError;
  /** Task id, when it could be read. */
  readonly id: string | null;
  /** Task name, when it could be read. */
  readonly task: string | null;
}

/** The outcome of decoding one message. */
export type DecodeResult = DecodeSuccess | DecodeFailure;

/**
 * One delivery, once the transport framing is removed: what the Redis envelope or the AMQP
 * frame said, not yet checked.
 */
export interface RawDelivery {
  /** Application headers (`undefined` when there were none). */
  readonly headers: unknown;
  /** The body as text (already base64-decoded on Redis). */
  readonly body: string;
  readonly contentType: unknown;
  readonly contentEncoding: unknown;
  readonly priority: unknown;
  readonly replyTo: unknown;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
}

/** Headers we map to fields; anything else is kept in `extraHeaders`. */
const MODELLED_HEADERS = new Set([
  'lang',
  'task',
  'id',
  'shadow',
  'eta',
  'expires',
  'group',
  'group_index',
  'retries',
  'timelimit',
  'root_id',
  'parent_id',
  'argsrepr',
  'kwargsrepr',
  'origin',
  'ignore_result',
  // kombu adds this on restore; the delivery's own flag carries it.
  'redelivered',
]);

/** Thrown inside the decoder only; turned into a {@link DecodeFailure} at its boundary. */
class Defect extends Error {
  constructor(
    readonly reason: InvalidMessageReason,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Decodes one delivery into a {@link TaskMessage}.
 *
 * Accepts protocol v2 (a `task` header) and legacy v1 JSON bodies (Sentry ran v1), kombu ≥ 5.3
 * tagged values (replaced by kombu 5.2's plain strings), bare `NaN`, unknown headers. Refuses,
 * with a reason: any content type but JSON, a compressed body, a body that is not
 * `[args, kwargs, embed]`, missing `id`/`task`, and headers of the wrong type.
 */
export function decodeDelivery(delivery: RawDelivery): DecodeResult {
  const headers = isPlainObject(delivery.headers) ? delivery.headers : {};
  try {
    checkContentType(delivery.contentType, delivery.contentEncoding, headers);
    const parsed = parseBody(delivery.body);
    const message =
      'task' in headers ? decodeV2(headers, parsed, delivery) : decodeV1(parsed, delivery, headers);
    return { ok: true, message };
  } catch (error) {
    const defect =
      error instanceof Defect
        ? error
        : new Defect(INVALID_MESSAGE_REASONS.malformedBody, describe(error));
    return {
      ok: false,
      error: new InvalidMessageError(defect.reason, defect.message, { cause: error }),
      id: typeof headers.id === 'string' ? headers.id : null,
      task: typeof headers.task === 'string' ? headers.task : null,
    };
  }
}

/** UTF-8 that refuses malformed bytes instead of replacing them; a BOM is kept, as Python does. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LENIENT_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * {@link decodeDelivery} for a body that arrived as bytes (an AMQP frame, a base64 Redis body).
 *
 * Bytes that are not UTF-8 are refused, as kombu's `bytes_to_str` refuses them: decoding them
 * with replacement characters would hand the task silently altered arguments (`café` in
 * Latin-1 would run as `caf\uFFFD`). A content type or encoding the message is refused for
 * anyway (a pickle body is never UTF-8) stays the reason, since it is the one to act on.
 */
export function decodeDeliveryBytes(
  delivery: Omit<RawDelivery, 'body'> & { readonly body: Uint8Array },
): DecodeResult {
  let text: string | null;
  try {
    text = STRICT_UTF8.decode(delivery.body);
  } catch {
    // Not UTF-8: decoded leniently below only to find a better reason, never to run.
    text = null;
  }
  const result = decodeDelivery({ ...delivery, body: text ?? LENIENT_UTF8.decode(delivery.body) });
  if (text !== null) return result;
  if (
    !result.ok &&
    (result.error.reason === INVALID_MESSAGE_REASONS.unsupportedContentType ||
      result.error.reason === INVALID_MESSAGE_REASONS.unsupportedEncoding)
  ) {
    return result;
  }
  return {
    ok: false,
    error: new InvalidMessageError(
      INVALID_MESSAGE_REASONS.unsupportedEncoding,
      `body is not valid UTF-8 (${delivery.body.length} bytes): only utf-8 is read`,
    ),
    id: result.ok ? result.message.id : result.id,
    task: result.ok ? result.message.task : result.task,
  };
}

/**
 * A header value, for an error message: short scalars as they are, anything else by its shape.
 * Dead-letter reasons are read by people and land in logs: they must not carry a payload.
 */
function describeValue(value: unknown): string {
  if (typeof value === 'string')
    return value.length <= 40 ? JSON.stringify(value) : describeShape(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null)
    return String(value);
  return describeShape(value);
}

/**
 * The shape of a value without its content: what args and kwargs are described by, since they
 * may hold secrets.
 */
function describeShape(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  if (value === null) return 'null';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function checkContentType(
  contentType: unknown,
  contentEncoding: unknown,
  headers: Record<string, unknown>,
) {
  if (typeof contentType !== 'string' || contentType === '') {
    throw new Defect(
      INVALID_MESSAGE_REASONS.unsupportedContentType,
      'no content-type (Celery messages say application/json)',
    );
  }
  const mediaType = contentType.split(';', 1)[0]?.trim().toLowerCase();
  if (mediaType !== CONTENT_TYPE) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.unsupportedContentType,
      `content-type ${contentType} is not accepted: only application/json is read (configure the Python producer with task_serializer='json'; pickle and yaml are never read)`,
    );
  }
  if (
    contentEncoding !== undefined &&
    contentEncoding !== null &&
    String(contentEncoding).toLowerCase().replace('_', '-') !== CONTENT_ENCODING
  ) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.unsupportedEncoding,
      `content-encoding ${String(contentEncoding)} is not accepted: only utf-8`,
    );
  }
  if (headers.compression !== undefined && headers.compression !== null) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.unsupportedEncoding,
      `compressed bodies (compression=${String(headers.compression)}) are not accepted`,
    );
  }
}

function parseBody(body: string): unknown {
  let parsed: unknown;
  try {
    parsed = parsePythonJson(body);
  } catch (error) {
    // JSON.parse quotes the text around the error; the body may hold secrets, so only the
    // position is kept.
    const position = /position (\d+)/.exec(describe(error))?.[1];
    const where = position === undefined ? '' : ` (at character ${position} of ${body.length})`;
    throw new Defect(INVALID_MESSAGE_REASONS.malformedBody, `body is not JSON${where}`);
  }
  // Checked before anything recursive walks the body: a deep enough body (a 10 000-deep array)
  // would otherwise exhaust the stack and be refused for a misleading reason, or, a little less
  // deep, reach the task.
  if (nestedDeeperThan(parsed, MAX_BODY_DEPTH)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.malformedBody,
      `body is nested deeper than ${MAX_BODY_DEPTH} levels`,
    );
  }
  try {
    return untagKombuJson(parsed);
  } catch (error) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.malformedBody,
      `body holds a kombu tagged value we cannot read: ${describe(error)}`,
    );
  }
}

/**
 * Deepest nesting a body may have: twice what our producers may publish (arguments nest at most
 * 32 levels), and far below what would exhaust the stack of the recursive steps that follow
 * (kombu untagging, schemas, the task itself).
 */
const MAX_BODY_DEPTH = 64;

/** True when `value` nests arrays or objects more than `limit` levels deep. Not recursive. */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [item, depth] = next;
    if (typeof item !== 'object' || item === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

function decodeV2(
  headers: Record<string, unknown>,
  body: unknown,
  delivery: RawDelivery,
): TaskMessage {
  if (!Array.isArray(body) || body.length !== 3) {
    const shape = Array.isArray(body) ? `an array of ${body.length} items` : typeof body;
    throw new Defect(
      INVALID_MESSAGE_REASONS.malformedBody,
      `body must be [args, kwargs, embed], got ${shape}`,
    );
  }
  const [args, kwargs, embed] = body as [unknown, unknown, unknown];
  const id = requireString(headers, 'id');
  const task = requireString(headers, 'task');
  return {
    id,
    task,
    args: readArgs(args),
    kwargs: readKwargs(kwargs),
    embed: readEmbed(embed),
    retries: readRetries(headers.retries),
    eta: readTime(headers, 'eta'),
    expires: readTime(headers, 'expires'),
    rootId: optionalString(headers, 'root_id'),
    parentId: optionalString(headers, 'parent_id'),
    group: optionalString(headers, 'group'),
    groupIndex: optionalInteger(headers, 'group_index'),
    shadow: optionalString(headers, 'shadow'),
    timeLimit: readTimeLimit(headers.timelimit),
    argsrepr: optionalString(headers, 'argsrepr') ?? '',
    kwargsrepr: optionalString(headers, 'kwargsrepr') ?? '',
    origin: optionalString(headers, 'origin'),
    lang: optionalString(headers, 'lang') ?? 'py',
    ignoreResult: readBoolean(headers, 'ignore_result'),
    ...readDelivery(delivery),
    redelivered: delivery.redelivered || headers.redelivered === true,
    protocol: 2,
    extraHeaders: pickExtraHeaders(headers),
    rawBody: delivery.body,
  };
}

/**
 * Protocol v1 (Celery < 4, and Sentry's configuration): everything is in the body object
 * `{task, id, args, kwargs, retries, eta, expires, timelimit, taskset, callbacks, errbacks, chord}`.
 */
function decodeV1(
  body: unknown,
  delivery: RawDelivery,
  headers: Record<string, unknown>,
): TaskMessage {
  if (!isPlainObject(body)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.missingHeader,
      'no task header (protocol v2) and the body is not a protocol v1 task object',
    );
  }
  const id = requireString(body, 'id');
  const task = requireString(body, 'task');
  const args = body.args ?? [];
  const kwargs = body.kwargs ?? {};
  return {
    id,
    task,
    args: readArgs(args),
    kwargs: readKwargs(kwargs),
    embed: {
      callbacks: readSignatureList(body.callbacks, 'callbacks'),
      errbacks: readSignatureList(body.errbacks, 'errbacks'),
      chain: null,
      chord: (body.chord ?? null) as JsonValue,
    },
    retries: readRetries(body.retries),
    eta: readTime(body, 'eta'),
    expires: readTime(body, 'expires'),
    rootId: id,
    parentId: null,
    group: optionalString(body, 'taskset'),
    groupIndex: null,
    shadow: null,
    timeLimit: readTimeLimit(body.timelimit),
    argsrepr: JSON.stringify(args),
    kwargsrepr: JSON.stringify(kwargs),
    origin: null,
    lang: 'py',
    ignoreResult: false,
    ...readDelivery(delivery),
    redelivered: delivery.redelivered || headers.redelivered === true,
    protocol: 1,
    extraHeaders: {},
    rawBody: null,
  };
}

function readDelivery(delivery: RawDelivery) {
  const priority = delivery.priority;
  return {
    priority: typeof priority === 'number' && Number.isInteger(priority) ? priority : 0,
    replyTo: typeof delivery.replyTo === 'string' && delivery.replyTo ? delivery.replyTo : null,
    exchange: delivery.exchange,
    routingKey: delivery.routingKey,
  };
}

function pickExtraHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (!MODELLED_HEADERS.has(key)) extra[key] = value;
  }
  return extra;
}

function requireString(source: Record<string, unknown>, key: string): string {
  const value = source[key];
  if (value === undefined || value === null) {
    throw new Defect(INVALID_MESSAGE_REASONS.missingHeader, `missing ${key}`);
  }
  if (typeof value !== 'string' || value === '') {
    throw new Defect(
      INVALID_MESSAGE_REASONS.invalidHeader,
      `${key} must be a non-empty string, got ${describeValue(value)}`,
    );
  }
  return value;
}

function optionalString(source: Record<string, unknown>, key: string): string | null {
  const value = source[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') {
    throw new Defect(
      INVALID_MESSAGE_REASONS.invalidHeader,
      `${key} must be a string or null, got ${describeValue(value)}`,
    );
  }
  return value;
}

function optionalInteger(source: Record<string, unknown>, key: string): number | null {
  const value = source[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.invalidHeader,
      `${key} must be an integer or null, got ${describeValue(value)}`,
    );
  }
  return value;
}

function readBoolean(source: Record<string, unknown>, key: string): boolean {
  const value = source[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') {
    throw new Defect(
      INVALID_MESSAGE_REASONS.invalidHeader,
      `${key} must be a boolean, got ${describeValue(value)}`,
    );
  }
  return value;
}

function readRetries(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.invalidHeader,
      `retries must be a non-negative integer, got ${describeValue(value)}`,
    );
  }
  return value;
}

function readTime(source: Record<string, unknown>, key: string): Date | null {
  const text = optionalString(source, key);
  if (text === null) return null;
  const date = parseCeleryTime(text);
  if (!date) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.invalidHeader,
      `${key} must be an ISO 8601 time, got ${describeValue(text)}`,
    );
  }
  return date;
}

function readTimeLimit(value: unknown): TimeLimit {
  if (value === undefined || value === null) return [null, null];
  const valid = (item: unknown): item is number | null =>
    item === null || (typeof item === 'number' && Number.isFinite(item) && item >= 0);
  if (!Array.isArray(value) || value.length !== 2 || !value.every(valid)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.invalidHeader,
      `timelimit must be [hard, soft] seconds or nulls, got ${describeValue(value)}`,
    );
  }
  const [hard, soft] = value as [number | null, number | null];
  return [hard, soft];
}

function readArgs(value: unknown): JsonValue[] {
  if (!Array.isArray(value)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.malformedBody,
      `args must be an array, got ${describeShape(value)}`,
    );
  }
  return value as JsonValue[];
}

function readKwargs(value: unknown): JsonObject {
  if (!isPlainObject(value)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.malformedBody,
      `kwargs must be an object, got ${describeShape(value)}`,
    );
  }
  return value as JsonObject;
}

function readEmbed(value: unknown): Embed {
  if (value === null || value === undefined) return EMPTY_EMBED;
  if (!isPlainObject(value)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.malformedBody,
      `embed must be an object or null, got ${describeShape(value)}`,
    );
  }
  return {
    callbacks: readSignatureList(value.callbacks, 'embed.callbacks'),
    errbacks: readSignatureList(value.errbacks, 'embed.errbacks'),
    chain: readSignatureList(value.chain, 'embed.chain'),
    chord: (value.chord ?? null) as JsonValue,
  };
}

function readSignatureList(value: unknown, path: string): JsonValue[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) {
    throw new Defect(
      INVALID_MESSAGE_REASONS.malformedBody,
      `${path} must be a list of signatures or null`,
    );
  }
  return value as JsonValue[];
}

/**
 * The broker-neutral wire form of a message, as plain JSON: what the dispatcher sends a per-task
 * function, which decodes it with {@link decodeDelivery} exactly as a broker delivery.
 */
export function toRawDelivery(message: TaskMessage): RawDelivery {
  return {
    headers: toCeleryHeaders(message),
    body: serializeBody(message),
    contentType: CONTENT_TYPE,
    contentEncoding: CONTENT_ENCODING,
    priority: message.priority,
    replyTo: message.replyTo,
    exchange: message.exchange,
    routingKey: message.routingKey,
    redelivered: message.redelivered,
  };
}
