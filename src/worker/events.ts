/**
 * What the worker reports per settled message: the task's own outcome, or what happened to a
 * message that never reached a task (undecodable, could not be invoked, put back unrun).
 */
import type { Delivery } from '../brokers/broker.js';
import type { TaskOutcome } from '../core/task-outcome.js';

/** What happened to one message. */
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
    }
  /** Taken but never started (a deadline came first): put back as it was, nothing counted. */
  | { readonly kind: 'released'; readonly detail: string };

/** One settled message, as reported to `onOutcome`. */
export interface WorkerEvent {
  readonly queue: string;
  readonly delivery: Delivery;
  readonly outcome: DispatchOutcome;
}
