/**
 * The dead-letter reason as AMQP headers on the dead message (`x-sc-dead-*`), and back. The body
 * and Celery's own headers stay as they were, so a replay re-publishes the original message.
 */
import type { DeadLetterReason } from '../../core/dead-letter.js';
import type { DeadLetterEntry } from '../broker.js';

const PREFIX = 'x-sc-dead-';

/** Headers that carry `reason` on a dead message. */
export function deadLetterHeaders(
  reason: DeadLetterReason,
  queue: string,
  at: Date,
): Record<string, string | number | null> {
  return {
    [`${PREFIX}reason`]: reason.reason,
    [`${PREFIX}detail`]: reason.detail,
    [`${PREFIX}task`]: reason.task,
    [`${PREFIX}id`]: reason.id,
    [`${PREFIX}retries`]: reason.retries,
    [`${PREFIX}error-type`]: reason.errorType ?? null,
    [`${PREFIX}error-message`]: reason.errorMessage ?? null,
    [`${PREFIX}queue`]: queue,
    [`${PREFIX}at`]: at.toISOString(),
  };
}

/** Reads a dead-letter entry back from a dead message's headers and body. */
export function readDeadLetterHeaders(
  headers: Record<string, unknown>,
  queue: string,
  content: Uint8Array,
): DeadLetterEntry {
  const text = (key: string): string | null => {
    const value = headers[`${PREFIX}${key}`];
    return typeof value === 'string'
      ? value
      : value instanceof Uint8Array
        ? Buffer.from(value).toString('utf8')
        : null;
  };
  const retries = headers[`${PREFIX}retries`];
  const errorType = text('error-type');
  const errorMessage = text('error-message');
  return {
    reason: (text('reason') ?? 'invalid-message') as DeadLetterEntry['reason'],
    detail: text('detail') ?? '',
    task: text('task'),
    id: text('id'),
    retries: typeof retries === 'number' ? retries : null,
    ...(errorType === null ? {} : { errorType }),
    ...(errorMessage === null ? {} : { errorMessage }),
    queue: text('queue') ?? queue,
    at: text('at') ?? '',
    raw: Buffer.from(content).toString('utf8'),
  };
}
