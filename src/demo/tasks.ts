/**
 * The demo service's tasks, from the seed: "When an event comes in, instead of writing it to the
 * database immediately, send a job to the queue so the request returns right away; background
 * workers save it."
 *
 * `ingest.save_event` retries transient store errors with backoff, fails programming errors at
 * once (dead letter), and ignores events that are gone. A payload may ask for trouble, to show
 * each path: `{"simulate": "transient", "times": 2}` or `{"simulate": "bug"}`.
 */
import * as z from 'zod/mini';
import { defineTask } from '../core/task.js';
import { EventNotFoundError, EventStore, StoreUnavailableError } from './event-store.js';

/** The demo's queue. */
export const EVENTS_QUEUE = 'events';

/** The store the tasks use: `STORE_URL`, else the local Redis. */
export const store = new EventStore(process.env.STORE_URL ?? 'redis://127.0.0.1:6379/0');

/** Saves an event that the API stored as pending. */
export const saveEvent = defineTask(
  {
    name: 'ingest.save_event',
    queue: EVENTS_QUEUE,
    kwargs: z.object({ event_id: z.string().check(z.minLength(1)) }),
    retry: { on: [StoreUnavailableError], exclude: [TypeError], ignore: [EventNotFoundError] },
    backoff: { factor: 1, max: 30 },
    maxRetries: 5,
    timeLimit: 30,
  },
  async ({ event_id }) => {
    const event = await store.get(event_id);
    if (!event) throw new EventNotFoundError(`event ${event_id} is gone`);
    const attempt = await store.countAttempt(event_id);
    const simulate = (event.payload ?? {}) as { simulate?: string; times?: number };
    if (simulate.simulate === 'transient' && attempt <= (simulate.times ?? 1)) {
      throw new StoreUnavailableError(`store busy (attempt ${attempt})`);
    }
    if (simulate.simulate === 'bug') throw new TypeError(`cannot read the payload of ${event_id}`);
    await store.markSaved(event_id);
    return { saved: event_id, attempt };
  },
);

/** Deletes saved events older than an hour, every minute. */
export const cleanup = defineTask(
  { name: 'ingest.cleanup', queue: EVENTS_QUEUE, cron: '* * * * *', maxRetries: 0 },
  async () => ({ deleted: await store.deleteSavedBefore(3_600_000) }),
);
