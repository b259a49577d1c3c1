/**
 * A producer that keeps publishing while the test restarts the broker under it, and remembers the
 * outcome of every publish: resolved (the broker has the messages), rejected (with what error),
 * or hung (neither, within 20 s: a silent drop in the making).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskMessage } from '../../../src/core/message.js';

/** A publish still pending after this long is recorded as hung. */
const HUNG_AFTER_MS = 20_000;

/** One call to `publish`. */
export interface PublishAttempt {
  /** Ids of the messages of the call. */
  readonly ids: readonly string[];
  readonly startedAt: number;
  readonly endedAt: number;
  /** `null` when the publish resolved; what it rejected with otherwise. */
  readonly error: unknown;
}

/** The error recorded for a publish that neither resolved nor rejected in time. */
export class PublishHungError extends Error {
  override name = 'PublishHungError' as const;
}

/** Options of {@link startSteadyProducer}. */
export interface SteadyProducerOptions {
  readonly publish: (messages: readonly TaskMessage[]) => Promise<void>;
  /** The `index`-th message. */
  readonly message: (index: number) => TaskMessage;
  /** Sizes of successive calls, cycled (e.g. `[1, 3]`: one message, then three). */
  readonly batchSizes: readonly number[];
  /** Pause between calls, ms. */
  readonly pauseMs: number;
  /** Pause after a failed call, ms (a caller backing off). @defaultValue `pauseMs` */
  readonly pauseAfterFailureMs?: number;
  /** Stops by itself after this many messages. */
  readonly maxMessages: number;
  /** Callers publishing at once, each one call at a time (an HTTP producer under load). @defaultValue 1 */
  readonly concurrency?: number;
}

/** A running producer. */
export interface SteadyProducer {
  /** Attempts so far. */
  readonly attempts: readonly PublishAttempt[];
  /** Stops after the call in hand and resolves with every attempt. */
  stop(): Promise<PublishAttempt[]>;
}

/** Starts publishing, one call at a time per caller, until stopped or `maxMessages` are sent. */
export function startSteadyProducer(options: SteadyProducerOptions): SteadyProducer {
  const attempts: PublishAttempt[] = [];
  let stopped = false;
  let index = 0;
  let call = 0;
  const caller = async () => {
    while (!stopped && index < options.maxMessages) {
      const size = options.batchSizes[call++ % options.batchSizes.length] ?? 1;
      const messages = Array.from({ length: size }, () => options.message(index++));
      const startedAt = Date.now();
      let error: unknown = null;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          options.publish(messages),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new PublishHungError(`publish pending after ${HUNG_AFTER_MS} ms`)),
              HUNG_AFTER_MS,
            );
          }),
        ]);
      } catch (failure) {
        error = failure;
      } finally {
        clearTimeout(timer);
      }
      attempts.push({
        ids: messages.map((message) => message.id),
        startedAt,
        endedAt: Date.now(),
        error,
      });
      await sleep(
        error === null ? options.pauseMs : (options.pauseAfterFailureMs ?? options.pauseMs),
      );
    }
  };
  const callers = Array.from({ length: options.concurrency ?? 1 }, caller);
  return {
    attempts,
    async stop() {
      stopped = true;
      await Promise.all(callers);
      return attempts;
    },
  };
}
