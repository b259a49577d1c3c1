/**
 * Effects of settlements: what must be done before held messages are settled, in one place for
 * every host (the local and CLI worker, the Redis poller, the Amazon MQ dispatcher), all of which
 * settle through a {@link SettleQueue}.
 *
 * Order: chord sizes stored (a chord sent as a continuation), then every continuation published
 * in one call, and only then the caller settles. A crash in between leaves the messages held, the
 * broker gives them back, they run again and republish the same ids: at-least-once, never lost.
 */
import type { Broker, BrokerLogger } from '../brokers/broker.js';
import type { ChordSize } from '../core/canvas.js';
import { InvalidConfigError } from '../core/errors.js';
import type { ResultBackend } from '../core/result-backend.js';
import { type Effects, settlementForInvokeFailure } from '../core/settlement.js';
import type { WorkerEvent } from './events.js';
import type { SettleEntry } from './settle-queue.js';

/** The slice of a result backend effects need. */
export interface EffectsBackend {
  /** Stores chord sizes, before the chords' header messages are published. */
  setChordSize(sizes: readonly ChordSize[]): Promise<void>;
  /** Stores outcomes and counts chord parts (absent: a backend that only counts chords). */
  record?: ResultBackend['record'];
}

/** Where effects go. */
export interface EffectsTargets {
  readonly broker: Pick<Broker, 'publish'>;
  /** The result backend, if one is configured. */
  readonly backend?: EffectsBackend | null | undefined;
}

/**
 * Performs the effects of settlements about to be made, all together.
 *
 * @throws the broker's or the backend's error: then none of those settlements may be made as
 *   they are (their messages must come back, to run again and publish again)
 * @throws InvalidConfigError for chord sizes without a backend (admission refuses such messages)
 */
export async function performEffects(
  effects: readonly Effects[],
  targets: EffectsTargets,
): Promise<void> {
  const sizes = effects.flatMap((effect) => effect.chordSizes);
  const messages = effects.flatMap((effect) => effect.publish);
  if (sizes.length > 0) {
    if (!targets.backend) {
      throw new InvalidConfigError('worker', [
        {
          path: 'resultBackend',
          message: 'a chord was sent as a continuation, and chords need a result backend',
        },
      ]);
    }
    await targets.backend.setChordSize(sizes);
  }
  if (messages.length > 0) await targets.broker.publish(messages);
  // Recorded after the continuations are out, as Celery stores after dispatching them (so a
  // waiter that sees SUCCESS finds the children sent); a chord's body goes out from here too.
  const records = effects.flatMap((effect) => (effect.record ? [effect.record] : []));
  if (records.length > 0 && targets.backend?.record) {
    await targets.backend.record(records, (next) => targets.broker.publish(next));
  }
}

/** What {@link requeueAfterEffects} needs to know. */
export interface RequeueOptions {
  readonly poisonCap: number;
  readonly now: number;
  readonly logger: BrokerLogger;
}

/**
 * How a message is settled when its continuations could not be published: re-queued as a
 * failed attempt (toward the poison cap, no task retry spent), so it runs again and publishes
 * them again; never settled as if they were sent.
 *
 * @returns the entry to settle instead, or `null` to leave it held (nothing to re-queue)
 */
export function requeueAfterEffects(
  entry: SettleEntry<WorkerEvent>,
  error: Error,
  options: RequeueOptions,
): SettleEntry<WorkerEvent> | null {
  const { delivery } = entry.item;
  if (!delivery.result.ok) return null;
  const { message } = delivery.result;
  const cause = new Error(`its continuations could not be published: ${error.message}`);
  const decided = settlementForInvokeFailure(message, cause, options.poisonCap, options.now);
  options.logger.warn(`worker: ${message.task} ${message.id}: ${cause.message}`);
  const { failures, dead } = decided;
  const outcome = { kind: 'invoke-failed', detail: cause.message, failures, dead } as const;
  return { item: { delivery, settlement: decided.settlement }, tag: { ...entry.tag, outcome } };
}
