/**
 * Replaying a dead letter: the operator has fixed the cause and wants the task to run again now.
 */
import type { TaskMessage } from './message.js';
import { SENT_HEADER } from './trace-context.js';

/**
 * The message to publish for a dead letter being replayed: the same id (and root, parent, args,
 * kwargs, body bytes), retries reset to 0, no eta and no expiry (the operator asks for a run now),
 * no mark of an earlier delivery, and sent `now`: its queue latency counts from the replay, not
 * from the first publish.
 */
export function replayMessage(message: TaskMessage, now: Date = new Date()): TaskMessage {
  const { 'x-sc-invoke-failures': _failures, ...extraHeaders } = message.extraHeaders;
  return {
    ...message,
    retries: 0,
    eta: null,
    expires: null,
    redelivered: false,
    extraHeaders: { ...extraHeaders, [SENT_HEADER]: now.toISOString() },
  };
}
