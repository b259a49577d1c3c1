/**
 * What a producer of ours adds to every message it publishes: the caller's trace context and the
 * time it was sent (queue latency counts from it). Celery ignores both headers.
 */
import type { TaskMessage } from '../core/message.js';
import { type TraceContext, withTraceContext } from '../core/trace-context.js';

/**
 * `messages` with `context` and the send time recorded (see {@link withTraceContext}).
 *
 * @param now - the send time, injectable for tests @defaultValue now
 */
export function stampMessages(
  messages: readonly TaskMessage[],
  context: TraceContext,
  now: Date = new Date(),
): TaskMessage[] {
  return messages.map((message) => withTraceContext(message, context, now));
}
