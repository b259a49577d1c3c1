/**
 * `task-sent` for a producer (Celery's `task_send_sent_event`): one event per published message,
 * sent once the broker has the messages. A send that fails is logged once per burst of failures
 * (the worker's {@link EventSender} rule) and never fails the publish: the tasks are on their
 * way, and a caller retrying the publish would send them twice.
 */
import { taskSent } from '../core/celery-events.js';
import type { EventDispatcher } from '../core/event-dispatcher.js';
import type { TaskMessage } from '../core/message.js';
import { type EventLogger, EventSender } from '../worker/event-sender.js';

/** Announces published messages; resolves once sent or failed, never rejects. */
export type SentAnnouncer = (messages: readonly TaskMessage[]) => Promise<void>;

/** The announcer of a producer: does nothing without `events`. */
export function sentAnnouncer(
  events: EventDispatcher | null | undefined,
  logger: EventLogger = console,
): SentAnnouncer {
  if (!events) return async () => undefined;
  // A sender of its own: its failures are counted apart from a worker's on the same dispatcher.
  const sender = new EventSender(events, logger);
  return (messages) => sender.send(messages.map((message) => taskSent(message)));
}
