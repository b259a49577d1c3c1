/**
 * A hand-written {@link EventDispatcher} that records what it is asked to send, one entry per
 * `send` call, stamped as a real dispatcher stamps them, and can be told to fail (a broker that
 * went away).
 */
import type { CeleryEvent, EventDraft } from '../../src/core/celery-events.js';
import {
  type EventDispatcher,
  EventStamper,
  type SendEventsOptions,
} from '../../src/core/event-dispatcher.js';

/** One `send` call. */
export interface SentBatch {
  readonly types: string[];
  /** The events as a receiver would read them. */
  readonly events: readonly CeleryEvent[];
  readonly multi: boolean;
}

/** A dispatcher that keeps its sends. */
export interface RecordingDispatcher extends EventDispatcher {
  readonly sends: SentBatch[];
  /** Every event type sent, in order, across calls. */
  types(): string[];
  /** Event types sent for the task `uuid`, in order. */
  typesOf(uuid: string): string[];
  /** While set, `send` rejects with it. */
  failWith: Error | undefined;
  readonly closed: boolean;
}

/** Creates a {@link RecordingDispatcher}. */
export function recordingDispatcher(hostname = 'test@host'): RecordingDispatcher {
  const sends: SentBatch[] = [];
  const stamper = new EventStamper({ hostname });
  let closed = false;
  const dispatcher: RecordingDispatcher = {
    kind: 'redis',
    hostname,
    sends,
    failWith: undefined,
    get closed() {
      return closed;
    },
    types: () => sends.flatMap((batch) => batch.types),
    typesOf: (uuid) =>
      sends
        .flatMap((batch) => batch.events)
        .filter((event) => event.uuid === uuid)
        .map((event) => event.type),
    async send(drafts: readonly EventDraft[], options: SendEventsOptions = {}) {
      if (dispatcher.failWith) throw dispatcher.failWith;
      const stamped = drafts.map((draft) => stamper.stamp(draft));
      sends.push({
        types: stamped.map((event) => event.type),
        events: stamped.map((event) => JSON.parse(event.json) as CeleryEvent),
        multi: options.multi ?? false,
      });
    },
    async close() {
      closed = true;
    },
  };
  return dispatcher;
}
