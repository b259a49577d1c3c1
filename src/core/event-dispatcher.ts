/**
 * The event-dispatcher contract (one publisher per broker kind, in `src/brokers/*`) and the pure
 * parts every publisher shares: the Lamport clock, stamping a draft the way Celery's
 * `EventDispatcher.publish` + `Event()` do, node names, and cutting stamped events into wire
 * messages (one per event, or Celery's `<group>.multi` lists).
 */
import { hostname as osHostname } from 'node:os';
import {
  type CeleryEvent,
  type CeleryEventType,
  type EventDraft,
  eventGroup,
  eventRoutingKey,
} from './celery-events.js';
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

/** An event stamped by an {@link EventStamper}: its type and its JSON text. */
export interface StampedEvent {
  readonly type: CeleryEventType;
  /** The event as it goes on the wire, a JSON object (a {@link CeleryEvent}). */
  readonly json: string;
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

/**
 * A node name given as Celery's `-n` takes it: `name@host`, or a bare host (`celery@` is then
 * put before it), with Celery's `%h` (host name), `%n` (its first label) and `%d` (its domain)
 * expanded in both parts, as `celery/utils/nodenames.py` does.
 *
 * @example
 * celeryNodeName('worker1@%h', 'box.example.com'); // 'worker1@box.example.com'
 * celeryNodeName('%n', 'box.example.com'); // 'celery@box'
 */
export function celeryNodeName(given: string, host: string = osHostname()): string {
  const at = given.indexOf('@');
  const name = at === -1 ? 'celery' : given.slice(0, at) || 'celery';
  const where = at === -1 ? given : given.slice(at + 1);
  const [first = host, ...domain] = host.split('.');
  const expand = (text: string) =>
    text.replace(/%([hnd%])/g, (_match, key: string) =>
      key === 'h' ? host : key === 'n' ? first : key === 'd' ? domain.join('.') : '%',
    );
  return `${expand(name)}@${expand(where || host)}`;
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
  readonly #hostnameJson: string;
  #offset = 0;
  #offsetAt = Number.NEGATIVE_INFINITY;
  readonly #pid: number;
  readonly #clock: LamportClock;
  readonly #now: () => number;

  constructor(stamp: EventStamp = {}) {
    this.hostname = stamp.hostname ?? workerNodeName();
    this.#hostnameJson = JSON.stringify(this.hostname);
    this.#pid = stamp.pid ?? process.pid;
    this.#clock = stamp.clock ?? PROCESS_CLOCK;
    this.#now = stamp.now ?? Date.now;
  }

  /**
   * The event's wire text, its keys in the order Python's `Event()` writes them: `hostname`,
   * `utcoffset`, `pid`, `clock`, the fields, `timestamp`, `type`. A field named like a stamp key
   * is dropped (Python would raise on the duplicate keyword), except `timestamp`, kept when
   * given (as `Event()` keeps it).
   */
  stamp(draft: EventDraft): StampedEvent {
    const now = this.#now();
    const { fields } = draft;
    const given = fields.timestamp;
    const timestamp = typeof given === 'number' ? given : (draft.at ?? now) / 1000;
    // Written as text around the fields' own JSON, not as an object stringified later: this
    // runs three times per task, and the objects and their copies cost a worker with events on
    // a measurable share of its drain rate (bench/drain.ts).
    const own = JSON.stringify(shadowsStamp(fields) ? withoutStampKeys(fields) : fields);
    const json =
      `{"hostname":${this.#hostnameJson},"utcoffset":${this.#utcOffset(now)},` +
      `"pid":${this.#pid},"clock":${this.#clock.forward()}` +
      `${own.length > 2 ? `,${own.slice(1, -1)}` : ''},` +
      `"timestamp":${JSON.stringify(timestamp)},"type":"${draft.type}"}`;
    return { type: draft.type, json };
  }

  /** {@link celeryUtcOffset}, looked up once a minute: a daylight-saving change shows a minute late at most. */
  #utcOffset(now: number): number {
    if (now - this.#offsetAt >= 60_000 || now < this.#offsetAt) {
      this.#offset = celeryUtcOffset(new Date(now));
      this.#offsetAt = now;
    }
    return this.#offset;
  }
}

/** Keys the stamper writes itself: a draft's own are dropped (`timestamp` is read first). */
const STAMP_KEYS = ['hostname', 'utcoffset', 'pid', 'clock', 'timestamp', 'type'] as const;

function shadowsStamp(fields: EventDraft['fields']): boolean {
  return STAMP_KEYS.some((key) => key in fields);
}

function withoutStampKeys(fields: EventDraft['fields']): Record<string, JsonValue> {
  const kept: Record<string, JsonValue> = {};
  for (const key in fields) {
    if (!(STAMP_KEYS as readonly string[]).includes(key)) kept[key] = fields[key] as JsonValue;
  }
  return kept;
}

/** One message of events: routing key, JSON body, and the `hostname` header Celery adds. */
export interface EventMessage {
  readonly routingKey: string;
  /** JSON text of one event, or of a list of events (`<group>.multi`). */
  readonly body: string;
  readonly headers: { readonly hostname: string };
}

/**
 * Events per `<group>.multi` message at most. Celery's worker flushes every 24
 * (`buffer_limit`); ours buffers longer but still cuts messages small, since a list of a
 * thousand events is a string V8 allocates (and frees) outside its heap, page by page: such
 * strings cost a worker with events on more system time than its own task messages did.
 */
export const EVENTS_PER_MESSAGE = 100;

/**
 * Cuts stamped events into messages from `hostname`: one per event routed by its type, or with
 * `multi` lists of at most {@link EVENTS_PER_MESSAGE} events of one group (groups in order of
 * first appearance) routed `<group>.multi`, as Celery's `EventDispatcher.flush` sends
 * buffered task events.
 */
export function eventMessages(
  events: readonly StampedEvent[],
  hostname: string,
  options: SendEventsOptions = {},
): EventMessage[] {
  const headers = { hostname };
  if (!options.multi) {
    return events.map((event) => ({
      routingKey: eventRoutingKey(event.type),
      body: event.json,
      headers,
    }));
  }
  const groups = new Map<string, string[]>();
  for (const event of events) {
    const group = eventGroup(event.type);
    const members = groups.get(group);
    if (members) members.push(event.json);
    else groups.set(group, [event.json]);
  }
  const messages: EventMessage[] = [];
  for (const [group, members] of groups) {
    for (let start = 0; start < members.length; start += EVENTS_PER_MESSAGE) {
      const body = `[${members.slice(start, start + EVENTS_PER_MESSAGE).join(',')}]`;
      messages.push({ routingKey: `${group}.multi`, body, headers });
    }
  }
  return messages;
}
