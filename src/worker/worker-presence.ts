/**
 * A worker's presence in Celery's monitoring (celery/worker/heartbeat.py `Heart`):
 * `worker-online` when it starts, `worker-heartbeat` every `freq` seconds, `worker-offline` when
 * it stops. A receiver counts a worker alive until `freq × 2` seconds after its last event.
 *
 * Two lifetimes: a long-lived worker (`process`) goes online and offline with its loop. A Lambda
 * environment (`invocation`) is a worker that sleeps between invocations: it goes online at its
 * first invocation (the cold start), beats at each one and every `freq` seconds while it runs,
 * and never says offline, since it cannot know which invocation is its last; receivers see it
 * lapse `freq × 2` seconds after its last beat.
 */
import { DEFAULT_HEARTBEAT_SECONDS, workerEvent } from '../core/celery-events.js';
import type { EventSender } from './event-sender.js';

/** How long the worker lives, as Celery's monitoring should see it. */
export const PRESENCE_MODES = ['process', 'invocation'] as const;
/** One of {@link PRESENCE_MODES}. */
export type PresenceMode = (typeof PRESENCE_MODES)[number];

/** Options of {@link startPresence}. */
export interface PresenceOptions {
  readonly mode: PresenceMode;
  /** Seconds between heartbeats. @defaultValue 2, Celery's */
  readonly freq?: number;
}

/**
 * Announces the worker now (online, or a heartbeat for an environment already online) and beats
 * every `freq` seconds until the returned function is called; that one resolves once the last
 * event (`worker-offline` for a process) is sent or has failed. Nothing here throws.
 */
export function startPresence(sender: EventSender, options: PresenceOptions): () => Promise<void> {
  const freq = options.freq ?? DEFAULT_HEARTBEAT_SECONDS;
  const status = () => ({ freq, active: sender.active, processed: sender.processed });
  const kind = sender.announced ? 'heartbeat' : 'online';
  sender.announced = true;
  const first = sender.send([workerEvent(kind, status())]);
  const timer = setInterval(() => {
    void sender.send([workerEvent('heartbeat', status())]);
  }, freq * 1000);
  // A heartbeat alone must not keep a process alive, nor fire in a Lambda's next invocation.
  timer.unref();
  return async () => {
    clearInterval(timer);
    await first;
    if (options.mode === 'process') {
      sender.announced = false;
      await sender.send([workerEvent('offline', status())]);
    } else {
      await sender.flushed();
    }
  };
}
