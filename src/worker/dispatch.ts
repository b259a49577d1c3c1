/**
 * Dispatching a batch of held deliveries: group them by task, hand each group to an executor,
 * and settle every message from its own outcome, in one round trip. One task's failure never
 * fails its neighbours; a failure to run a group at all (invoke error, timeout, crash) re-queues
 * its messages without spending a task retry, up to a poison cap, then dead-letters them.
 */
import type { Broker, Delivery, SettleItem, Settlement } from '../brokers/broker.js';
import { DEAD_LETTER_REASONS } from '../core/dead-letter.js';
import { PayloadTooLargeError, toError } from '../core/errors.js';
import { createRetryMessage, type TaskMessage } from '../core/message.js';
import type { Registry } from '../core/registry.js';
import type { TaskOutcome } from '../core/task-outcome.js';
import { serializeBody } from '../core/wire.js';
import type { TaskExecutor } from './executor.js';
import { settlementForInvalid } from './settlement.js';

/** Header counting failed attempts to run a message (not task retries). */
export const INVOKE_FAILURES_HEADER = 'x-sc-invoke-failures';

/** What happened to one message of a batch. */
export type DispatchOutcome =
  | TaskOutcome
  | { readonly kind: 'invalid'; readonly detail: string }
  | {
      readonly kind: 'invoke-failed';
      readonly detail: string;
      /** Failed attempts so far, this one included. */
      readonly failures: number;
      /** True once the poison cap is reached: the message was dead-lettered. */
      readonly dead: boolean;
    };

/** One settled message, as reported to `onOutcome`. */
export interface WorkerEvent {
  readonly queue: string;
  readonly delivery: Delivery;
  readonly outcome: DispatchOutcome;
}

/** Options of {@link dispatchBatch}. */
export interface DispatchOptions {
  /** Failed attempts to run a message before it is dead-lettered as poison. @defaultValue 5 */
  readonly poisonCap?: number;
  /** Clock. @defaultValue Date.now */
  readonly now?: () => number;
  /** Called once per settled message. */
  readonly onOutcome?: (event: WorkerEvent) => void;
}

/**
 * Runs and settles a batch. Messages that cannot run anywhere (undecodable, unknown task,
 * expired) and messages not yet due are settled without bothering an executor.
 */
export async function dispatchBatch(
  broker: Pick<Broker, 'settle'>,
  registry: Registry,
  deliveries: readonly Delivery[],
  executor: TaskExecutor,
  options: DispatchOptions = {},
): Promise<WorkerEvent[]> {
  const now = options.now ?? Date.now;
  const settled: [SettleItem, WorkerEvent][] = [];
  const settle = (delivery: Delivery, settlement: Settlement, outcome: DispatchOutcome) =>
    settled.push([
      { delivery, settlement },
      { queue: delivery.queue, delivery, outcome },
    ]);
  const groups = new Map<string, { delivery: Delivery; message: TaskMessage }[]>();

  for (const delivery of deliveries) {
    const { result } = delivery;
    if (!result.ok) {
      settle(delivery, settlementForInvalid(result), {
        kind: 'invalid',
        detail: result.error.message,
      });
      continue;
    }
    const message = result.message;
    const early = settleWithoutRunning(registry, message, now());
    if (early) {
      settle(delivery, settlementFor(early, message), early);
      continue;
    }
    const group = groups.get(message.task) ?? [];
    group.push({ delivery, message });
    groups.set(message.task, group);
  }

  await Promise.all(
    [...groups].map(async ([task, group]) => {
      let outcomes: TaskOutcome[];
      try {
        outcomes = await executor.execute(
          task,
          group.map((item) => item.message),
        );
        if (outcomes.length !== group.length) {
          throw new Error(
            `executor returned ${outcomes.length} outcomes for ${group.length} messages`,
          );
        }
      } catch (error) {
        for (const { delivery, message } of group) {
          const [settlement, outcome] = invokeFailed(
            message,
            toError(error),
            options.poisonCap ?? 5,
            now(),
          );
          settle(delivery, settlement, outcome);
        }
        return;
      }
      group.forEach(({ delivery, message }, index) => {
        const outcome = outcomes[index] as TaskOutcome;
        settle(delivery, settlementFor(outcome, message), outcome);
      });
    }),
  );

  await broker.settle(settled.map(([item]) => item));
  const events = settled.map(([, event]) => event);
  for (const event of events) options.onOutcome?.(event);
  return events;
}

/**
 * Expired, not yet due, unknown or too large: decided here, so no function is invoked for nothing.
 * A body over the task's `maxArgumentBytes` (the limit our producers are held to) is refused as
 * it would be at publish time: run in a task function it would also fail the invoke of every
 * neighbour in its batch (Lambda refuses payloads over 6 MB).
 */
function settleWithoutRunning(
  registry: Registry,
  message: TaskMessage,
  now: number,
): TaskOutcome | null {
  const base = { task: message.task, id: message.id, retries: message.retries };
  if (message.expires && message.expires.getTime() <= now) {
    const detail = `expired at ${message.expires.toISOString()}`;
    return {
      kind: 'dead',
      reason: { ...base, reason: DEAD_LETTER_REASONS.expired, detail },
      durationMs: 0,
    };
  }
  if (message.eta && message.eta.getTime() > now) {
    return { kind: 'not-due', dueAt: message.eta.toISOString() };
  }
  const lookup = registry.lookup(message.task);
  if (lookup.kind === 'unregistered') {
    const reason = {
      ...base,
      reason: DEAD_LETTER_REASONS.unknownTask,
      detail: lookup.error.message,
    };
    return { kind: 'dead', reason, durationMs: 0 };
  }
  const limit = lookup.task.options.maxArgumentBytes;
  const bytes = Buffer.byteLength(serializeBody(message), 'utf8');
  if (bytes > limit) {
    const error = new PayloadTooLargeError(lookup.task.name, bytes, limit);
    const reason = {
      ...base,
      reason: DEAD_LETTER_REASONS.invalidArguments,
      detail: error.message,
      errorType: error.name,
      errorMessage: error.message,
    };
    return { kind: 'dead', reason, durationMs: 0 };
  }
  return null;
}

/**
 * How a message is settled after its outcome: done for success and ignore, a delayed retry (same
 * id, `retries + 1`), the same message parked until its eta, or the dead-letter store.
 */
export function settlementFor(outcome: TaskOutcome, message: TaskMessage): Settlement {
  switch (outcome.kind) {
    case 'succeeded':
    case 'ignored':
    case 'duplicate':
      return { kind: 'done' };
    case 'retry': {
      const dueAt = new Date(outcome.dueAt);
      // The task ran: failures to run it before no longer count toward the poison cap.
      const { [INVOKE_FAILURES_HEADER]: _failures, ...extraHeaders } = message.extraHeaders;
      const retry = { ...createRetryMessage(message, dueAt), extraHeaders };
      return { kind: 'retry-later', message: retry, dueAt };
    }
    case 'not-due':
      return { kind: 'retry-later', message, dueAt: new Date(outcome.dueAt) };
    case 'dead':
      return { kind: 'dead-letter', reason: outcome.reason };
  }
}

/**
 * A group could not be run: try the same message again shortly (1 s, 2 s, 4 s … up to 60 s)
 * without touching its task retries, or dead-letter it as poison once the cap is reached.
 */
function invokeFailed(
  message: TaskMessage,
  error: Error,
  cap: number,
  now: number,
): [Settlement, DispatchOutcome] {
  const previous = Number(message.extraHeaders[INVOKE_FAILURES_HEADER] ?? 0);
  const failures = (Number.isInteger(previous) && previous > 0 ? previous : 0) + 1;
  const detail = `${error.name}: ${error.message}`;
  if (failures >= cap) {
    const reason = {
      reason: DEAD_LETTER_REASONS.poison,
      detail: `could not be run ${failures} times; last: ${detail}`,
      task: message.task,
      id: message.id,
      retries: message.retries,
      errorType: error.name,
      errorMessage: error.message,
    };
    return [
      { kind: 'dead-letter', reason },
      { kind: 'invoke-failed', detail, failures, dead: true },
    ];
  }
  const dueAt = new Date(now + Math.min(60_000, 1000 * 2 ** (failures - 1)));
  const again = {
    ...message,
    extraHeaders: { ...message.extraHeaders, [INVOKE_FAILURES_HEADER]: failures },
  };
  return [
    { kind: 'retry-later', message: again, dueAt },
    { kind: 'invoke-failed', detail, failures, dead: false },
  ];
}
