/**
 * The event-dispatcher contract (one publisher per broker kind, in `src/brokers/*`) and the pure
 * parts every publisher shares: the Lamport clock, stamping a draft the way Celery's
 * `EventDispatcher.publish` + `Event()` do, node names, and cutting stamped events into wire
 * messages (one per event, or Celery's `<group>.multi` lists).
 */
import { hostname as osHostname } from 'node:os';
import { type CeleryEvent, type EventDraft, eventGroup, eventRoutingKey } from './celery-events.js';
import type { JsonValue } from './json.js';

/** Publishes Celery events. Brokers implement it in `src/brokers/<kind>/<kind>-events.ts`. */
export interface EventDispatcher {
  /** Which adapter this is. */
  readonly kind: 'redis' | 'rabbitmq';
  /** The node name events are sent as. */
  readonly hostname: string;
  /**
   * Stamps the drafts (clock, timestamp, hostname, pid) and publishes them in one round trip.
   * Events are monitoring data: callers should log a failure, never fail a task over it.
   *
   * @throws BrokerError when the broker is unreachable or refuses
   */
  send(drafts: readonly EventDraft[], options?: SendEventsOptions): Promise<void>;
  /** Closes the connection. The dispatcher cannot be used afterwards. */
  close(): Promise<void>;
}

/** Options of {@link EventDispatcher.send}. */
export interface SendEventsOptions {
  /**
   * Send the events of one group (`task`, `worker`) as one message whose body is their list,
   * routed `<group>.multi`, as a Celery worker buffers task events. Receivers of Celery ≥ 4
   * read both forms. @defaultValue false
   */
  readonly multi?: boolean;
}

/**
 * kombu's `LamportClock`: `forward()` before each send, `adjust(other)` on receiving another
 * node's value. One per process, shared by every dispatcher in it, as Celery's `app.clock`.
 */
export class LamportClock {
  #value: number;

  constructor(initial = 0) {
    this.#value = initial;
  }

  /** The current value. */
  get value(): number {
    return this.#value;
  }

  /** Moves one step and returns the new value. */
  forward(): number {
    this.#value += 1;
    return this.#value;
  }

  /** Takes another node's value into account: `max(own, other) + 1`. */
  adjust(other: number): number {
    this.#value = Math.max(this.#value, other) + 1;
    return this.#value;
  }
}

/** The process's clock, like Celery's `app.clock`. */
export const PROCESS_CLOCK = new LamportClock();

/**
 * Celery's `utcoffset()` (celery/utils/time.py): `time.timezone // 3600`, i.e. whole hours
 * *west* of UTC, floor-divided (UTC+2 is -2, UTC-5 is 5). Receivers use it to shift the
 * timestamp by the difference to their own offset, so it must be what Python would send from
 * the same machine. Lambda runs in UTC: 0.
 */
export function celeryUtcOffset(date: Date = new Date()): number {
  // getTimezoneOffset() is minutes west of UTC, with daylight saving, like time.altzone/timezone.
  return Math.floor(date.getTimezoneOffset() / 60);
}

/**
 * The node name a worker sends events as. Celery's are `name@host`: a worker's default is
 * `celery@<socket.gethostname()>`, a producer's (`anon_nodename`) `gen<pid>@<host>`.
 *
 * In Lambda, every execution environment is a worker of its own, so its name is
 * `<function name>@<environment id>`, the id taken from the log stream name
 * (`2026/12/05/[$LATEST]<32 hex>`, one per environment); elsewhere `celery@<host name>`.
 */
export function workerNodeName(env: Record<string, string | undefined> = process.env): string {
  const functionName = env.AWS_LAMBDA_FUNCTION_NAME;
  if (functionName) {
    const environment = /\]([0-9a-f]+)$/.exec(env.AWS_LAMBDA_LOG_STREAM_NAME ?? '')?.[1];
    return `${functionName}@${environment?.slice(0, 12) ?? osHostname()}`;
  }
  return `celery@${osHostname()}`;
}

/** Who stamps: the sender's identity, its clock and time source. */
export interface EventStamp {
  /** @defaultValue {@link workerNodeName}() */
  readonly hostname?: string;
  /** @defaultValue process.pid */
  readonly pid?: number;
  /** @defaultValue {@link PROCESS_CLOCK} */
  readonly clock?: LamportClock;
  /** Unix ms. @defaultValue Date.now */
  readonly now?: () => number;
}

/** Stamps drafts for one sender. */
export class EventStamper {
  readonly hostname: string;
  readonly #pid: number;
  readonly #clock: LamportClock;
  readonly #now: () => number;

  constructor(stamp: EventStamp = {}) {
    this.hostname = stamp.hostname ?? workerNodeName();
    this.#pid = stamp.pid ?? process.pid;
    this.#clock = stamp.clock ?? PROCESS_CLOCK;
    this.#now = stamp.now ?? Date.now;
  }

  /**
   * The event on the wire, its keys in the order Python's `Event()` writes them: `hostname`,
   * `utcoffset`, `pid`, `clock`, the fields, `timestamp`, `type`. A field named like a stamp key
   * is dropped (Python would raise on the duplicate keyword), except `timestamp`, kept when
   * given (as `Event()` keeps it).
   */
  stamp(draft: EventDraft): CeleryEvent {
    const now = this.#now();
    const event: Record<string, JsonValue> = {
      hostname: this.hostname,
      utcoffset: celeryUtcOffset(new Date(now)),
      pid: this.#pid,
      clock: this.#clock.forward(),
    };
    // A loop, not rest-and-spread: this runs three times per task, and the spread copies cost a
    // worker with events on a measurable share of its drain rate (bench/drain.ts).
    const { fields } = draft;
    for (const key in fields) {
      if (!STAMP_KEYS.has(key)) event[key] = fields[key] as JsonValue;
    }
    const { timestamp } = fields;
    event.timestamp = typeof timestamp === 'number' ? timestamp : now / 1000;
    event.type = draft.type;
    return event as CeleryEvent;
  }
}

/** Keys the stamper writes itself: a draft's own are dropped (`timestamp` is read first). */
const STAMP_KEYS = new Set(['hostname', 'utcoffset', 'pid', 'clock', 'timestamp', 'type']);

/** One message of events: routing key, JSON body, and the `hostname` header Celery adds. */
export interface EventMessage {
  readonly routingKey: string;
  /** JSON text of one event, or of a list of events (`<group>.multi`). */
  readonly body: string;
  readonly headers: { readonly hostname: string };
}

/**
 * Cuts stamped events into messages: one per event routed by its type, or with `multi` one per
 * group (in order of first appearance) routed `<group>.multi` with a list body, as Celery's
 * `EventDispatcher.flush` sends buffered task events.
 */
export function eventMessages(
  events: readonly CeleryEvent[],
  options: SendEventsOptions = {},
): EventMessage[] {
  const headersOf = (event: CeleryEvent) => ({ hostname: event.hostname });
  if (!options.multi) {
    return events.map((event) => ({
      routingKey: eventRoutingKey(event.type),
      body: JSON.stringify(event),
      headers: headersOf(event),
    }));
  }
  const groups = new Map<string, CeleryEvent[]>();
  for (const event of events) {
    const group = eventGroup(event.type);
    const members = groups.get(group);
    if (members) members.push(event);
    else groups.set(group, [event]);
  }
  return [...groups].map(([group, members]) => ({
    routingKey: `${group}.multi`,
    body: JSON.stringify(members),
    headers: headersOf(members[0] as CeleryEvent),
  }));
}
