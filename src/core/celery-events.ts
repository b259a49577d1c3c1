/**
 * Celery's monitoring events (what Flower and `celery events` read), as pure data: one
 * constructor per event type, with the field names and value types a Python Celery 5 worker
 * sends (celery/worker/strategy.py `task-received`, celery/worker/request.py `task-started` to
 * `task-revoked`, celery/app/amqp.py `task-sent`, celery/worker/heartbeat.py `worker-*`).
 *
 * A constructor returns an {@link EventDraft}: the type and the sender's fields. Stamping it
 * (hostname, pid, clock, timestamp, utcoffset) is the dispatcher's job (`event-dispatcher.ts`),
 * as in Celery's `EventDispatcher.publish`.
 *
 * Left out: `task-cancelled`, `worker-elect` (gossip) and custom event types.
 */
import { loadavg, type } from 'node:os';
import type { JsonValue } from './json.js';
import type { TaskMessage } from './message.js';
import { exceptionRepr, pythonRepr } from './python-repr.js';
import { formatCeleryTime } from './time.js';

/** The event types we send, Celery's names. */
export const CELERY_EVENT_TYPES = [
  'task-sent',
  'task-received',
  'task-started',
  'task-succeeded',
  'task-failed',
  'task-retried',
  'task-rejected',
  'task-revoked',
  'worker-online',
  'worker-heartbeat',
  'worker-offline',
] as const;

/** One of {@link CELERY_EVENT_TYPES}. */
export type CeleryEventType = (typeof CELERY_EVENT_TYPES)[number];

/** An event before it is stamped: its type and the fields its sender adds. */
export interface EventDraft {
  readonly type: CeleryEventType;
  readonly fields: Readonly<Record<string, JsonValue>>;
  /**
   * When it happened, unix ms: the event's `timestamp` (unless its fields give one), for events
   * buffered and sent together. @defaultValue when it is sent
   */
  readonly at?: number;
}

/**
 * An event as it goes on the wire: a flat JSON object. `clock` is the sender's Lamport clock;
 * `timestamp` unix seconds; `utcoffset` Celery's hours *west* of UTC (see `celeryUtcOffset`).
 */
export interface CeleryEvent {
  readonly [field: string]: JsonValue;
  readonly hostname: string;
  readonly utcoffset: number;
  readonly pid: number;
  readonly clock: number;
  readonly timestamp: number;
  readonly type: CeleryEventType;
}

/** The `celeryev` exchange Celery publishes events to (`event_exchange`). */
export const CELERY_EVENT_EXCHANGE = 'celeryev';

/**
 * The routing key of an event type: `task-succeeded` → `task.succeeded`
 * (celery/events/dispatcher.py `publish`: `type.replace('-', '.')`).
 */
export function eventRoutingKey(eventType: string): string {
  return eventType.replaceAll('-', '.');
}

/** The group of an event type, the part before the first `-` (Celery's `group_from`). */
export function eventGroup(eventType: string): string {
  const dash = eventType.indexOf('-');
  return dash === -1 ? eventType : eventType.slice(0, dash);
}

/** Where a published task went, added to `task-sent` as Celery's `send_task_message` does. */
export interface SentRoute {
  /** The queue name. @defaultValue the message's routing key */
  readonly queue?: string;
}

/**
 * `task-sent`, sent by a producer (hostname = its `origin`). Receivers ignore its clock
 * (celery/events/receiver.py: "clients never sync").
 */
export function taskSent(message: TaskMessage, route: SentRoute = {}): EventDraft {
  return draft('task-sent', {
    uuid: message.id,
    root_id: message.rootId,
    parent_id: message.parentId,
    name: message.task,
    args: message.argsrepr,
    kwargs: message.kwargsrepr,
    retries: message.retries,
    eta: message.eta && formatCeleryTime(message.eta),
    expires: message.expires && formatCeleryTime(message.expires),
    queue: route.queue ?? message.routingKey,
    exchange: message.exchange,
    routing_key: message.routingKey,
  });
}

/**
 * `task-received`: the worker took the message. Its `name`, `args`, `kwargs`, `retries`, `eta`,
 * `expires`, `root_id` and `parent_id` win over any other event's (State's merge rule), so they
 * come from the message headers as Celery's `Request` reads them (`argsrepr`, `kwargsrepr`).
 */
export function taskReceived(message: TaskMessage): EventDraft {
  return draft('task-received', {
    uuid: message.id,
    name: message.task,
    args: message.argsrepr,
    kwargs: message.kwargsrepr,
    root_id: message.rootId,
    parent_id: message.parentId,
    retries: message.retries,
    eta: message.eta && formatCeleryTime(message.eta),
    expires: message.expires && formatCeleryTime(message.expires),
  });
}

/** `task-started`: the task body is about to run. Celery sends only the id. */
export function taskStarted(taskId: string): EventDraft {
  return draft('task-started', { uuid: taskId });
}

/**
 * `task-succeeded`. `result` is Celery's `saferepr(retval)` text (Python repr, 1024 characters
 * at most); `runtime` is seconds, a float.
 */
export function taskSucceeded(taskId: string, result: unknown, runtimeSeconds: number): EventDraft {
  return draft('task-succeeded', {
    uuid: taskId,
    result: pythonRepr(result),
    runtime: runtimeSeconds,
  });
}

/**
 * `task-failed`: `exception` is Celery's `safe_repr(exc)` (`ValueError('boom')`), `traceback` the
 * formatted traceback (here the error's stack).
 */
export function taskFailed(taskId: string, thrown: unknown): EventDraft {
  return draft('task-failed', {
    uuid: taskId,
    exception: exceptionRepr(thrown),
    traceback: stackOf(thrown),
  });
}

/**
 * `task-failed` for a message naming no registered task, as Celery's consumer sends it
 * (`exception: "NotRegistered('name')"`, no traceback).
 */
export function taskNotRegistered(taskId: string, taskName: string): EventDraft {
  return draft('task-failed', {
    uuid: taskId,
    exception: `NotRegistered(${pythonRepr(taskName)})`,
  });
}

/** `task-retried`: the run failed and a retry was published. Same fields as `task-failed`. */
export function taskRetried(taskId: string, thrown: unknown): EventDraft {
  return draft('task-retried', {
    uuid: taskId,
    exception: exceptionRepr(thrown),
    traceback: stackOf(thrown),
  });
}

/** `task-rejected`: the message was rejected (dead-lettered when `requeue` is false). */
export function taskRejected(taskId: string, requeue: boolean): EventDraft {
  return draft('task-rejected', { uuid: taskId, requeue });
}

/**
 * `task-revoked`, as Celery's `_announce_revoked` sends it; an expired message is
 * `{ expired: true, terminated: false, signum: null }`.
 */
export function taskRevoked(
  taskId: string,
  how: { expired: boolean; terminated?: boolean; signum?: number | null },
): EventDraft {
  return draft('task-revoked', {
    uuid: taskId,
    terminated: how.terminated ?? false,
    signum: how.signum ?? null,
    expired: how.expired,
  });
}

/** What a worker reports in `worker-online`, `worker-heartbeat` and `worker-offline`. */
export interface WorkerStatus {
  /**
   * Seconds between heartbeats. A receiver counts the worker alive until `freq × 2` seconds
   * after the last event from it (celery/events/state.py `HEARTBEAT_EXPIRE_WINDOW = 200`).
   * @defaultValue 2, Celery's `Heart.interval`
   */
  readonly freq?: number;
  /** Tasks running now. */
  readonly active: number;
  /** Tasks received since the worker started. */
  readonly processed: number;
  /** `[1, 5, 15]` minute load averages. @defaultValue `os.loadavg()`, rounded up to 0.01 */
  readonly loadavg?: readonly [number, number, number];
  /** `sw_ident`. @defaultValue {@link SOFTWARE_IDENT} */
  readonly swIdent?: string;
  /** `sw_ver`, the sender's version. @defaultValue `unknown` */
  readonly swVer?: string;
  /** `sw_sys`, Python's `platform.system()`. @defaultValue `os.type()` (`Linux`) */
  readonly swSys?: string;
}

/** Our `sw_ident` (Python workers send `py-celery`). */
export const SOFTWARE_IDENT = 'serverless-celery';

/** Celery's default heartbeat interval, seconds. */
export const DEFAULT_HEARTBEAT_SECONDS = 2;

/** `worker-online`, `worker-heartbeat` or `worker-offline`, with Celery's `Heart._send` fields. */
export function workerEvent(
  kind: 'online' | 'heartbeat' | 'offline',
  status: WorkerStatus,
): EventDraft {
  return draft(`worker-${kind}`, {
    freq: status.freq ?? DEFAULT_HEARTBEAT_SECONDS,
    active: status.active,
    processed: status.processed,
    loadavg: [...(status.loadavg ?? systemLoad())],
    sw_ident: status.swIdent ?? SOFTWARE_IDENT,
    sw_ver: status.swVer ?? 'unknown',
    sw_sys: status.swSys ?? type(),
  });
}

/** celery/utils/sysinfo.py: `ceil(l * 1e2) / 1e2` of each load average. */
function systemLoad(): [number, number, number] {
  const [one = 0, five = 0, fifteen = 0] = loadavg().map((load) => Math.ceil(load * 100) / 100);
  return [one, five, fifteen];
}

function stackOf(thrown: unknown): string {
  return thrown instanceof Error ? (thrown.stack ?? String(thrown)) : String(thrown);
}

function draft(eventType: CeleryEventType, fields: Record<string, JsonValue>): EventDraft {
  return { type: eventType, fields };
}
