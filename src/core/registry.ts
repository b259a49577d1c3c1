/**
 * The registry: the explicit list of task modules and queues an app runs (Celery's `imports` and
 * `task_queues`). Nothing is discovered by accident; everything wrong with the list is reported
 * at start-up, all at once.
 */
import { type FieldIssue, InvalidConfigError, UnknownTaskError } from './errors.js';
import {
  type QueueDeclaration,
  type QueueDeclarationInput,
  queueDeclarationSchema,
} from './queue.js';
import { isTask, type Task } from './task.js';
import { safeParse, toFieldIssues } from './zod-issues.js';

/**
 * A task module: a task itself, or a module namespace (`import * as ingest from './ingest.js'`)
 * whose exported tasks are registered. Exports that are not tasks are left alone.
 */
export type TaskModule = Task | Readonly<Record<string, unknown>>;

/** What {@link createRegistry} takes. */
export interface RegistryInput {
  /** Task modules, like Celery's `imports`. */
  readonly tasks: readonly TaskModule[];
  /** Every queue a task may use, like Celery's `task_queues`. */
  readonly queues: readonly QueueDeclarationInput[];
}

/** The result of looking a task name up. */
export type TaskLookup =
  | { readonly kind: 'task'; readonly task: Task }
  | { readonly kind: 'unregistered'; readonly name: string; readonly error: UnknownTaskError };

/** The tasks and queues of one app. */
export interface Registry {
  /** Every registered task, in registration order. */
  readonly tasks: readonly Task[];
  /** Every declared queue, in declaration order. */
  readonly queues: readonly QueueDeclaration[];
  /**
   * Finds a task by name or alias. An unknown name is a typed outcome, not an exception: the
   * caller dead-letters the message, it never drops it.
   */
  lookup(name: string): TaskLookup;
  /** The declared queue of that name, if any. */
  queue(name: string): QueueDeclaration | undefined;
  /** Tasks published to `queue` by default. */
  tasksOn(queue: string): readonly Task[];
}

/**
 * Builds a registry.
 *
 * @throws InvalidConfigError listing every problem: duplicate task names, colliding aliases,
 *   tasks on undeclared queues, duplicate or invalid queue declarations, modules with no task
 * @example
 * import * as ingest from './tasks/ingest.js';
 * export const registry = createRegistry({
 *   tasks: [ingest],
 *   queues: [{ name: 'events' }, { name: 'cleanup', durable: false }],
 * });
 */
export function createRegistry(input: RegistryInput): Registry {
  const issues: FieldIssue[] = [];
  const queues = declareQueues(input.queues ?? [], issues);
  const tasks = collectTasks(input.tasks ?? [], issues);
  const byName = new Map<string, Task>();
  for (const task of tasks) {
    for (const name of [task.name, ...task.options.aliases]) {
      const owner = byName.get(name);
      if (owner === task) continue;
      if (owner) {
        const what = name === task.name ? 'task name' : 'alias';
        issues.push({
          path: `tasks.${task.name}`,
          message: `${what} ${name} is already taken by task ${owner.name}`,
        });
        continue;
      }
      byName.set(name, task);
    }
    if (!queues.has(task.options.queue)) {
      issues.push({
        path: `tasks.${task.name}.queue`,
        message: `queue ${task.options.queue} is not declared (add it to queues)`,
      });
    }
  }
  if (issues.length > 0) throw new InvalidConfigError('registry', issues);

  const queueList = [...queues.values()];
  return Object.freeze({
    tasks,
    queues: queueList,
    lookup(name: string): TaskLookup {
      const task = byName.get(name);
      return task
        ? { kind: 'task', task }
        : { kind: 'unregistered', name, error: new UnknownTaskError(name) };
    },
    queue: (name: string) => queues.get(name),
    tasksOn: (queue: string) => tasks.filter((task) => task.options.queue === queue),
  });
}

function declareQueues(
  inputs: readonly QueueDeclarationInput[],
  issues: FieldIssue[],
): Map<string, QueueDeclaration> {
  const queues = new Map<string, QueueDeclaration>();
  inputs.forEach((input, index) => {
    const parsed = safeParse(queueDeclarationSchema, input);
    if (!parsed.success) {
      issues.push(...toFieldIssues(parsed.error, `queues[${index}]`));
      return;
    }
    if (queues.has(parsed.data.name)) {
      issues.push({
        path: `queues[${index}].name`,
        message: `queue ${parsed.data.name} is declared twice`,
      });
      return;
    }
    queues.set(parsed.data.name, parsed.data);
  });
  return queues;
}

function collectTasks(modules: readonly TaskModule[], issues: FieldIssue[]): Task[] {
  const tasks: Task[] = [];
  const seen = new Set<Task>();
  modules.forEach((module, index) => {
    const found = isTask(module) ? [module] : Object.values(module ?? {}).filter(isTask);
    if (found.length === 0) {
      issues.push({
        path: `tasks[${index}]`,
        message: 'is neither a task nor a module exporting tasks',
      });
    }
    for (const task of found) {
      // The same task object reached through two modules (a re-export) is one task.
      if (seen.has(task)) continue;
      seen.add(task);
      tasks.push(task);
    }
  });
  return tasks;
}
