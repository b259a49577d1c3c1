/**
 * A hand-written {@link EventDispatcher} that records what it is asked to send, one entry per
 * `send` call, and can be told to fail (a broker that went away).
 */
import type { EventDraft } from '../../src/core/celery-events.js';
import type { EventDispatcher, SendEventsOptions } from '../../src/core/event-dispatcher.js';

/** One `send` call. */
export interface SentBatch {
  readonly types: string[];
  readonly drafts: readonly EventDraft[];
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
        .flatMap((batch) => batch.drafts)
        .filter((draft) => draft.fields.uuid === uuid)
        .map((draft) => draft.type),
    async send(drafts: readonly EventDraft[], options: SendEventsOptions = {}) {
      if (dispatcher.failWith) throw dispatcher.failWith;
      sends.push({
        types: drafts.map((draft) => draft.type),
        drafts: [...drafts],
        multi: options.multi ?? false,
      });
    },
    async close() {
      closed = true;
    },
  };
  return dispatcher;
}
