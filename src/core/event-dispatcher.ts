/**
 * The event-dispatcher contract (one publisher per broker kind, in `src/brokers/*`) and the pure
 * parts every publisher shares: the Lamport clock, stamping a draft the way Celery's
 * `EventDispatcher.publish` + `Event()` do, node names, and cutting stamped events into wire
 * messages (one per event, or Celery's `<group>.multi` lists).
 */
import { hostname as osHostname } from 'node:os';
import {
  CELERY_EVENT_TYPES,
  type CeleryEvent,
  type CeleryEventType,
  type EventDraft,
  eventGroup,
  eventRoutingKey,
} from './celery-events.js';
import { JsonTextWriter } from './event-text.js';

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
  /**
   * The event as it goes on the wire, a JSON object (a {@link CeleryEvent}); from a `quoted`
   * stamper ({@link StampedForm}), that text as it reads inside a JSON string.
   */
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

/** Keys the stamper writes itself: a draft's own are dropped (`timestamp` is read first). */
const STAMP_KEYS = ['hostname', 'utcoffset', 'pid', 'clock', 'timestamp', 'type'] as const;

/** How an {@link EventStamper} writes events. */
export interface StampedForm {
  /**
   * Write each event as it reads inside a JSON string (quotes and backslashes escaped): for a
   * transport whose envelope carries the body as a JSON string (kombu's on Redis), which then
   * takes the body as it is. @defaultValue false, plain JSON
   */
  readonly quoted?: boolean;
}

/** Stamps drafts for one sender. */
export class EventStamper {
  readonly hostname: string;
  readonly #text: JsonTextWriter;
  readonly #pid: number;
  readonly #clock: LamportClock;
  readonly #now: () => number;
  /** The text before the clock's value, which holds the UTC offset: rewritten when it changes. */
  #head = '';
  #offset = Number.NaN;
  #offsetAt = Number.NEGATIVE_INFINITY;
  readonly #timestampKey: string;
  readonly #tails = new Map<CeleryEventType, string>();
  #lastTimestamp = Number.NaN;
  #lastTimestampText = 'null';

  constructor(stamp: EventStamp = {}, form: StampedForm = {}) {
    this.hostname = stamp.hostname ?? workerNodeName();
    this.#text = new JsonTextWriter(form.quoted ?? false, STAMP_KEYS);
    this.#timestampKey = `,${this.#text.string('timestamp')}:`;
    this.#pid = stamp.pid ?? process.pid;
    this.#clock = stamp.clock ?? PROCESS_CLOCK;
    this.#now = stamp.now ?? Date.now;
  }

  /** The event's wire text (see {@link write}). */
  stamp(draft: EventDraft): StampedEvent {
    const parts: string[] = [];
    this.write(draft, parts);
    return { type: draft.type, json: parts.join('') };
  }

  /**
   * Appends the event's wire text to `parts`, its keys in the order Python's `Event()` writes
   * them: `hostname`, `utcoffset`, `pid`, `clock`, the fields, `timestamp`, `type`. A field
   * named like a stamp key is dropped (Python would raise on the duplicate keyword), except
   * `timestamp`, kept when given (as `Event()` keeps it).
   */
  write(draft: EventDraft, parts: string[]): void {
    const now = this.#now();
    const given = draft.fields.timestamp;
    const timestamp = typeof given === 'number' ? given : (draft.at ?? now) / 1000;
    parts.push(this.#headAt(now), String(this.#clock.forward()));
    this.#text.fields(draft.fields, parts);
    parts.push(this.#timestampKey, this.#timestampText(timestamp), this.#typeTail(draft.type));
  }

  /** The timestamp's text, kept while events buffered together share it. */
  #timestampText(timestamp: number): string {
    if (timestamp !== this.#lastTimestamp) {
      this.#lastTimestamp = timestamp;
      this.#lastTimestampText = this.#text.value(timestamp) ?? 'null';
    }
    return this.#lastTimestampText;
  }

  /** `,"type":"<type>"}`, kept per type. */
  #typeTail(type: CeleryEventType): string {
    let tail = this.#tails.get(type);
    if (tail === undefined) {
      const q = this.#text.quote;
      tail = `,${q}type${q}:${this.#text.string(type)}}`;
      this.#tails.set(type, tail);
    }
    return tail;
  }

  /** {@link celeryUtcOffset}, looked up once a minute: a daylight-saving change shows a minute late at most. */
  #headAt(now: number): string {
    if (now - this.#offsetAt < 60_000 && now >= this.#offsetAt) return this.#head;
    this.#offsetAt = now;
    const offset = celeryUtcOffset(new Date(now));
    if (offset !== this.#offset) {
      this.#offset = offset;
      const text = this.#text;
      const q = text.quote;
      this.#head =
        `{${q}hostname${q}:${text.string(this.hostname)},${q}utcoffset${q}:${offset},` +
        `${q}pid${q}:${this.#pid},${q}clock${q}:`;
    }
    return this.#head;
  }
}

/** One message of events: routing key, JSON body, and the `hostname` header Celery adds. */
export interface EventMessage {
  readonly routingKey: string;
  /**
   * JSON text of one event, or of a list of events (`<group>.multi`); inside its
   * {@link EventFrame} when one was given.
   */
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

/** Each event type's group, looked up rather than cut from the type for every event. */
const GROUPS = new Map(CELERY_EVENT_TYPES.map((type) => [type, eventGroup(type)]));

/**
 * What a transport puts around each message's text (the text before and after it), joined with
 * it in one pass: kombu's Redis envelope, whose body is the events as a JSON string.
 */
export type EventFrame = (routingKey: string) => readonly [before: string, after: string];

/** A message being written: its parts, joined once it is complete. */
interface OpenMessage {
  readonly routingKey: string;
  readonly parts: string[];
  readonly after: string;
  count: number;
}

/**
 * Stamps drafts into messages from the stamper's host: one per event routed by its type, or
 * with `multi` lists of at most {@link EVENTS_PER_MESSAGE} events of one group routed
 * `<group>.multi`, as Celery's `EventDispatcher.flush` sends buffered task events. Events are
 * stamped in the drafts' order (so their clocks are), messages in the order of their first
 * event. Each message's text, `frame` included, is joined once from its events' parts.
 */
export function eventMessages(
  drafts: readonly EventDraft[],
  stamper: EventStamper,
  options: SendEventsOptions = {},
  frame?: EventFrame,
): EventMessage[] {
  const open = (routingKey: string, list: boolean): OpenMessage => {
    const [before, after] = frame?.(routingKey) ?? ['', ''];
    return list
      ? { routingKey, parts: [before, '['], after: `]${after}`, count: 0 }
      : { routingKey, parts: [before], after, count: 0 };
  };
  const written: OpenMessage[] = [];
  const lists = new Map<string, OpenMessage>();
  for (const draft of drafts) {
    let message: OpenMessage | undefined;
    if (!options.multi) {
      message = open(eventRoutingKey(draft.type), false);
      written.push(message);
    } else {
      const group = GROUPS.get(draft.type) ?? eventGroup(draft.type);
      message = lists.get(group);
      if (message === undefined || message.count === EVENTS_PER_MESSAGE) {
        message = open(`${group}.multi`, true);
        lists.set(group, message);
        written.push(message);
      } else {
        message.parts.push(',');
      }
    }
    stamper.write(draft, message.parts);
    message.count += 1;
  }
  const headers = { hostname: stamper.hostname };
  return written.map(({ routingKey, parts, after }) => {
    parts.push(after);
    return { routingKey, body: parts.join(''), headers };
  });
}
