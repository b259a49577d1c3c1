/**
 * How a worker sends Celery events without ever waiting on them: drafts are buffered, each
 * dated when it happened, and sent together (one `send` with `multi`, Celery's buffered task
 * events) {@link FLUSH_AFTER_MS} after the first of them, or as soon as {@link FLUSH_AT} wait;
 * one send in flight at a time, so the receiver sees them in order. A send that fails is
 * logged once per burst of failures, never thrown: events are monitoring data, and a task's
 * settlement must not wait for, or fail with, its announcement.
 *
 * One sender per dispatcher ({@link EventSender.of}): a Lambda environment keeps its counts
 * (`processed`, `active`) and its `worker-online` across warm invocations, as a long-lived
 * Celery worker keeps them across tasks.
 */
import { type EventDraft, taskReceived, taskStarted } from '../core/celery-events.js';
import { toError } from '../core/errors.js';
import type { EventDispatcher } from '../core/event-dispatcher.js';
import type { TaskMessage } from '../core/message.js';

/** Where a failed send is reported. */
export interface EventLogger {
  warn(message: string): void;
}

/**
 * How long the first buffered event waits for others, ms. Sending at every turn of the event
 * loop (as Celery's hub does) made one publish per handful of events in a busy worker; one
 * publish per 50 ms carries hundreds, and a monitor cannot tell events 50 ms late.
 */
export const FLUSH_AFTER_MS = 50;
/** Buffered events that are sent without waiting for {@link FLUSH_AFTER_MS}. */
export const FLUSH_AT = 1000;

const SENDERS = new WeakMap<EventDispatcher, EventSender>();

/** Buffers, sends and counts the events of one dispatcher. */
export class EventSender {
  readonly events: EventDispatcher;
  /** Messages received since the sender was created (`processed` of heartbeats). */
  processed = 0;
  /** Messages running now (`active` of heartbeats). */
  active = 0;
  /** `worker-online` was sent (a Lambda environment sends it once, at its first invocation). */
  announced = false;
  #logger: EventLogger;
  #buffer: EventDraft[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;

  constructor(events: EventDispatcher, logger: EventLogger = console) {
    this.events = events;
    this.#logger = logger;
  }

  /** The sender of `events`, created on first use; `logger` replaces the one it had. */
  static of(events: EventDispatcher, logger?: EventLogger): EventSender {
    let sender = SENDERS.get(events);
    if (!sender) {
      sender = new EventSender(events, logger);
      SENDERS.set(events, sender);
    } else if (logger) {
      sender.#logger = logger;
    }
    return sender;
  }

  /** Buffers drafts, dated now, for the next send. */
  push(drafts: readonly EventDraft[]): void {
    if (drafts.length === 0) return;
    const at = Date.now();
    for (const { type, fields } of drafts) this.#buffer.push({ type, fields, at });
    // A send in flight takes what was buffered meanwhile when it ends.
    if (!this.#flushing) this.#schedule();
  }

  /** `task-received` for messages taken, counted as `processed`. */
  received(messages: readonly TaskMessage[]): void {
    this.processed += messages.length;
    this.push(messages.map((message) => taskReceived(message)));
  }

  /** `task-started` for messages whose execution starts; they count as `active` until it ends. */
  started(messages: readonly TaskMessage[]): void {
    this.active += messages.length;
    this.push(messages.map((message) => taskStarted(message.id)));
  }

  /** An execution of `count` messages ended. */
  ended(count: number): void {
    this.active -= count;
  }

  /** Sends drafts now, after what is buffered; resolves when sent or failed (never rejects). */
  async send(drafts: readonly EventDraft[]): Promise<void> {
    if (drafts.length === 0) return;
    await this.flushed();
    await this.#sendSafely(drafts, false);
  }

  /** Sends what is buffered now, and resolves once all of it has been sent (or failed). */
  async flushed(): Promise<void> {
    while (this.#flushing || this.#buffer.length > 0) {
      if (!this.#flushing) this.#flush();
      await this.#flushing;
    }
  }

  #schedule(): void {
    if (this.#buffer.length >= FLUSH_AT) {
      this.#flush();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flush(), FLUSH_AFTER_MS);
      // Pending monitoring data must not keep a process alive; the stop paths flush it.
      this.#timer.unref();
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flushing || this.#buffer.length === 0) return;
    this.#flushing = this.#drain().finally(() => {
      this.#flushing = undefined;
      if (this.#buffer.length > 0) this.#schedule();
    });
  }

  /** Sends the buffer, one send at a time, until it is empty. */
  async #drain(): Promise<void> {
    while (this.#buffer.length > 0) {
      const drafts = this.#buffer;
      this.#buffer = [];
      await this.#sendSafely(drafts, true);
    }
  }

  async #sendSafely(drafts: readonly EventDraft[], multi: boolean): Promise<void> {
    try {
      await this.events.send(drafts, multi ? { multi: true } : {});
      this.#failing = false;
    } catch (error) {
      // Once per burst: a broker that is down would otherwise log a line per batch.
      if (this.#failing) return;
      this.#failing = true;
      this.#logger.warn(
        `events: ${drafts.length} event(s) not sent (${toError(error).message}); ` +
          'tasks go on, further failures are not logged until a send succeeds',
      );
    }
  }
}
