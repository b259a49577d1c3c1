/**
 * Celery's remote control (kombu's pidbox), the part a worker answers, as pure data: reading a
 * request, deciding whether it is addressed to this worker (kombu `Node.handle_message`), and
 * the replies of the inspect commands we support, in the shapes `celery/worker/control.py`
 * returns (`ping` → `{ok: 'pong'}`, `active` → `Request.info()` per running task, `registered`
 * → task names). Any other command is answered with an `error`, as a Celery worker answers a
 * command it does not know, so that the client prints it instead of waiting for a timeout.
 *
 * The mailbox contract (one per broker, in `src/brokers/<kind>/<kind>-pidbox.ts`) carries the
 * requests and replies; `src/worker/remote-control.ts` wires both to a running worker.
 */
import type { JsonObject, JsonValue } from './json.js';
import type { TaskMessage } from './message.js';

/** Celery's default `control_exchange`: requests go to `celery.pidbox`, replies to `reply.celery.pidbox`. */
export const CONTROL_NAMESPACE = 'celery';

/** Where a reply goes: kombu's `reply_to` (a direct exchange and the client's routing key). */
export interface ControlReplyTo {
  readonly exchange: string;
  readonly routingKey: string;
}

/** One remote-control request, as a Python `app.control` sends it. */
export interface ControlRequest {
  readonly method: string;
  readonly arguments: JsonObject;
  /** Node names it is for; empty or null: every worker. */
  readonly destination: readonly string[] | null;
  /** With `matcher` (`glob`, `pcre`): a node-name pattern it is for. */
  readonly pattern: string | null;
  readonly matcher: string | null;
  /** Present when a reply is expected (`call`/`broadcast(reply=True)`), with the ticket. */
  readonly replyTo: ControlReplyTo | null;
  readonly ticket: string | null;
}

/**
 * Carries remote-control requests to a worker and its replies back (Celery's pidbox). Brokers
 * implement it in `src/brokers/<kind>/<kind>-pidbox.ts`.
 */
export interface ControlMailbox {
  /**
   * Listens on `hostname`'s node of the mailbox and hands over every request (addressed to it
   * or not: see {@link isAddressedTo}). Resolves once listening.
   *
   * @throws BrokerError when the broker is unreachable or refuses
   */
  listen(hostname: string, onRequest: (request: ControlRequest) => void): Promise<void>;
  /**
   * Publishes a reply (Celery's `{<hostname>: <reply>}`) with the request's ticket.
   *
   * @throws BrokerError when the broker is unreachable or refuses
   */
  reply(to: ControlReplyTo, ticket: string | null, body: JsonValue): Promise<void>;
  /** Stops listening and closes the connections. */
  close(): Promise<void>;
}

/** Reads a pidbox message body; undefined when it is not a request. */
export function parseControlRequest(body: unknown): ControlRequest | undefined {
  if (!isObject(body) || typeof body.method !== 'string') return undefined;
  const replyTo = isObject(body.reply_to) ? body.reply_to : undefined;
  return {
    method: body.method,
    arguments: isObject(body.arguments) ? (body.arguments as JsonObject) : {},
    destination: Array.isArray(body.destination)
      ? body.destination.filter((name): name is string => typeof name === 'string')
      : null,
    pattern: typeof body.pattern === 'string' ? body.pattern : null,
    matcher: typeof body.matcher === 'string' ? body.matcher : null,
    replyTo:
      replyTo && typeof replyTo.exchange === 'string' && typeof replyTo.routing_key === 'string'
        ? { exchange: replyTo.exchange, routingKey: replyTo.routing_key }
        : null,
    ticket: typeof body.ticket === 'string' ? body.ticket : null,
  };
}

/**
 * Whether `hostname` should handle the request: named in `destination`, else matching
 * `pattern` (kombu's matchers: `glob` as fnmatch, `pcre` as `re.match`), else every worker.
 */
export function isAddressedTo(request: ControlRequest, hostname: string): boolean {
  if (request.destination && request.destination.length > 0) {
    return request.destination.includes(hostname);
  }
  if (request.pattern && request.matcher) {
    if (request.matcher === 'pcre')
      return safeRegExp(`^(?:${request.pattern})`)?.test(hostname) ?? false;
    if (request.matcher === 'glob') return globRegExp(request.pattern).test(hostname);
    return false;
  }
  return true;
}

/** A task running now, for `active`. */
export interface ActiveTask {
  readonly message: TaskMessage;
  /** When its execution started, unix ms. */
  readonly startedAt: number;
}

/** What a worker tells about itself. */
export interface InspectedWorker {
  readonly hostname: string;
  readonly pid: number;
  /** Tasks running now. */
  active(): readonly ActiveTask[];
  /** Names of the registered tasks. */
  registered(): readonly string[];
}

/** The reply to an inspect command, Celery's shape; an `error` for commands we do not answer. */
export function controlReply(request: ControlRequest, worker: InspectedWorker): JsonValue {
  switch (request.method) {
    case 'ping':
      return { ok: 'pong' };
    case 'active':
      return worker
        .active()
        .map((task) => activeInfo(task, worker, request.arguments.safe === true));
    case 'registered':
      return [...worker.registered()].sort();
    default:
      return {
        error: `No such control command: ${request.method} (serverless-celery answers ping, active, registered)`,
      };
  }
}

/** `Request.info(safe)`: args and kwargs as values, or with `safe` as their reprs. */
function activeInfo(
  { message, startedAt }: ActiveTask,
  worker: InspectedWorker,
  safe: boolean,
): JsonObject {
  return {
    id: message.id,
    name: message.task,
    args: safe ? message.argsrepr : [...message.args],
    kwargs: safe ? message.kwargsrepr : message.kwargs,
    type: message.task,
    hostname: worker.hostname,
    time_start: startedAt / 1000,
    // Ours are acknowledged once their outcome is settled, never while they run.
    acknowledged: false,
    delivery_info: {
      exchange: message.exchange,
      routing_key: message.routingKey,
      priority: message.priority,
      redelivered: message.redelivered,
    },
    worker_pid: worker.pid,
  };
}

/** fnmatch's translation: `*`, `?`, `[…]`, everything else literal. */
function globRegExp(pattern: string): RegExp {
  let source = '';
  for (const char of pattern) {
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else source += char.replace(/[\\^$.|+(){}[\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function safeRegExp(source: string): RegExp | undefined {
  try {
    return new RegExp(source);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
