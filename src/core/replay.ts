/**
 * Replaying a dead letter: the operator has fixed the cause and wants the task to run again now.
 */
import type { TaskMessage } from './message.js';

/**
 * The message to publish for a dead letter being replayed: the same id (and root, parent, args,
 * kwargs, body bytes), retries reset to 0, no eta and no expiry (the operator asks for a run now),
 * and no mark of an earlier delivery.
 */
export function replayMessage(message: TaskMessage): TaskMessage {
  const { 'x-sc-invoke-failures': _failures, ...extraHeaders } = message.extraHeaders;
  return { ...message, retries: 0, eta: null, expires: null, redelivered: false, extraHeaders };
}
