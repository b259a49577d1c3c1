/**
 * A small app for integration tests: `sentry.tasks.do_work`, the task the Python interop app
 * (`shared/celery-interop/interop_app.py`) defines, declared with `defineTask`, recording every
 * run through a callback. The same registry serves in-process consumers and the crash-test
 * consumer script.
 */
import { z } from 'zod';
import type { JsonValue } from '../../src/core/json.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import { defineTask, type Task } from '../../src/core/task.js';

/** The task name both sides of the interop tests know. */
export const DO_WORK = 'sentry.tasks.do_work';

/** What one run of {@link DO_WORK} saw. */
export interface RunRecord {
  readonly id: string;
  readonly task: string;
  readonly args: readonly JsonValue[];
  readonly kwargs: Record<string, unknown>;
  readonly retries: number;
  /** ISO 8601, or `null`. */
  readonly eta: string | null;
  /** ISO 8601, or `null`. */
  readonly expires: string | null;
  readonly rootId: string | null;
  readonly parentId: string | null;
  /** The message had been delivered before (restored after a consumer died). */
  readonly redelivered: boolean;
  /** Unix ms when the handler started. */
  readonly ranAt: number;
  /** Process that ran it. */
  readonly pid: number;
}

/** Options of {@link createFixtureApp}. */
export interface FixtureAppOptions {
  /** Queue the task is declared on (and published to by `createMessage`). */
  readonly queue: string;
  /** Called at the start of every run, awaited before the task returns. */
  readonly record: (run: RunRecord) => void | Promise<void>;
  /** Milliseconds every run takes, unless the kwarg `sleep_ms` says otherwise. @defaultValue 0 */
  readonly sleepMs?: number;
}

/** The app: its registry and its one task. */
export interface FixtureApp {
  readonly registry: Registry;
  readonly doWork: Task;
}

/**
 * Builds the app for one queue.
 *
 * @example
 * const runs: RunRecord[] = [];
 * const { registry, doWork } = createFixtureApp({ queue, record: (run) => runs.push(run) });
 */
export function createFixtureApp(options: FixtureAppOptions): FixtureApp {
  const doWork = defineTask(
    {
      name: DO_WORK,
      queue: options.queue,
      kwargs: z.object({ sleep_ms: z.number().int().nonnegative().optional() }),
    },
    async (kwargs, ctx) => {
      const ranAt = Date.now();
      const sleepMs = kwargs.sleep_ms ?? options.sleepMs ?? 0;
      if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
      await options.record({
        id: ctx.id,
        task: ctx.task,
        args: ctx.args,
        kwargs,
        retries: ctx.retries,
        eta: ctx.eta?.toISOString() ?? null,
        expires: ctx.expires?.toISOString() ?? null,
        rootId: ctx.rootId,
        parentId: ctx.parentId,
        redelivered: ctx.message.redelivered,
        ranAt,
        pid: process.pid,
      });
      return { ok: true, id: ctx.id };
    },
  );
  const registry = createRegistry({ tasks: [doWork], queues: [{ name: options.queue }] });
  return { registry, doWork };
}
