/**
 * `task-sent` for a producer (Celery's `task_send_sent_event`): one event per published message,
 * sent once the broker has the messages. A send that fails is logged once per burst of failures
 * and never fails the publish: the tasks are on their way, and a caller retrying the publish
 * would send them twice.
 */
import { taskSent } from '../core/celery-events.js';
import { toError } from '../core/errors.js';
import type { EventDispatcher } from '../core/event-dispatcher.js';
import type { TaskMessage } from '../core/message.js';

/** Announces published messages; resolves once sent or failed, never rejects. */
export type SentAnnouncer = (messages: readonly TaskMessage[]) => Promise<void>;

/** The announcer of a producer: does nothing without `events`. */
export function sentAnnouncer(
  events: EventDispatcher | null | undefined,
  logger: { warn(message: string): void } = console,
): SentAnnouncer {
  if (!events) return async () => undefined;
  let failing = false;
  return async (messages) => {
    if (messages.length === 0) return;
    try {
      await events.send(messages.map((message) => taskSent(message)));
      failing = false;
    } catch (error) {
      // Once per burst: a monitoring outage must not flood the producer's log.
      if (!failing) {
        logger.warn(
          `events: task-sent not sent (${toError(error).message}); the tasks were published`,
        );
      }
      failing = true;
    }
  };
}
