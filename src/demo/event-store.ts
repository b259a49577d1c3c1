/**
 * The demo's event store: each event a Redis hash `demo:event:<id>` holding its payload and
 * state (`pending` → `saved`). Small on purpose: the task gets the id, never the data.
 */
import { Redis } from 'ioredis';

/** An event's state as `GET /events/{id}` shows it. */
export interface StoredEvent {
  readonly id: string;
  readonly status: 'pending' | 'saved';
  readonly payload: unknown;
  readonly receivedAt: string;
  readonly savedAt: string | null;
  /** How many times the save task ran for it. */
  readonly attempts: number;
}

/** The store went away for a moment: worth a retry. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** The event was deleted before it could be saved: nothing to do. */
export class EventNotFoundError extends Error {
  override name = 'EventNotFoundError';
}

const KEY_PREFIX = 'demo:event:';

/** Events in Redis. One connection per process, created on first use. */
export class EventStore {
  readonly #url: string;
  #redis: Redis | undefined;

  constructor(url: string) {
    this.#url = url;
  }

  get #client(): Redis {
    this.#redis ??= new Redis(this.#url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    return this.#redis;
  }

  /** Stores a new event as pending and returns its id. */
  async create(payload: unknown): Promise<string> {
    const id = crypto.randomUUID();
    await this.#client.hset(`${KEY_PREFIX}${id}`, {
      status: 'pending',
      payload: JSON.stringify(payload),
      received_at: new Date().toISOString(),
      attempts: 0,
    });
    return id;
  }

  /** The event, or `null` when there is none. */
  async get(id: string): Promise<StoredEvent | null> {
    const fields = await this.#client.hgetall(`${KEY_PREFIX}${id}`);
    if (!fields.status) return null;
    return {
      id,
      status: fields.status as StoredEvent['status'],
      payload: JSON.parse(fields.payload ?? 'null'),
      receivedAt: fields.received_at ?? '',
      savedAt: fields.saved_at ?? null,
      attempts: Number(fields.attempts ?? 0),
    };
  }

  /** Counts one attempt to save the event; returns the count. */
  async countAttempt(id: string): Promise<number> {
    return this.#client.hincrby(`${KEY_PREFIX}${id}`, 'attempts', 1);
  }

  /** Marks the event saved. */
  async markSaved(id: string): Promise<void> {
    await this.#client.hset(`${KEY_PREFIX}${id}`, {
      status: 'saved',
      saved_at: new Date().toISOString(),
    });
  }

  /** Deletes saved events older than `maxAgeMs`; returns how many. */
  async deleteSavedBefore(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.#client.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const [status, savedAt] = await this.#client.hmget(key, 'status', 'saved_at');
        if (status === 'saved' && savedAt && Date.parse(savedAt) < cutoff)
          deleted += await this.#client.del(key);
      }
    } while (cursor !== '0');
    return deleted;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#redis?.quit().catch(() => this.#redis?.disconnect());
    this.#redis = undefined;
  }
}
