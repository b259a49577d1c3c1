/**
 * The one place where a task name becomes a Lambda function name. `serverless.yml` declares a
 * function under this key for every task; the dispatcher invokes `<prefix><key>`, with the prefix
 * (`<service>-<stage>-`) from the `FUNCTION_PREFIX` environment variable.
 */
import { InvalidConfigError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';

/** Lambda allows 64 characters in a function name; keep room for `<service>-<stage>-`. */
const MAX_KEY_LENGTH = 40;

/**
 * The `serverless.yml` function key of a task: `task-` then the name with `.` as `-` and any other
 * character Lambda refuses as `_` (`ingest.save_event` → `task-ingest-save_event`).
 */
export function taskFunctionKey(task: string): string {
  return `task-${task.replaceAll('.', '-').replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/**
 * Every task's function key, checked: two tasks may not share a key, and keys must fit Lambda's
 * name limit.
 *
 * @throws InvalidConfigError naming the tasks at fault
 */
export function taskFunctionKeys(registry: Registry): Map<string, string> {
  const keys = new Map<string, string>();
  const owners = new Map<string, string>();
  const issues = [];
  for (const task of registry.tasks) {
    const key = taskFunctionKey(task.name);
    const owner = owners.get(key);
    if (owner)
      issues.push({
        path: `tasks.${task.name}`,
        message: `function name ${key} is taken by ${owner}`,
      });
    if (key.length > MAX_KEY_LENGTH) {
      issues.push({
        path: `tasks.${task.name}`,
        message: `function name ${key} is over ${MAX_KEY_LENGTH} characters`,
      });
    }
    owners.set(key, task.name);
    keys.set(task.name, key);
  }
  if (issues.length > 0) throw new InvalidConfigError('function names', issues);
  return keys;
}

/**
 * The deployed name of the function of `task` (aliases resolve to their task).
 *
 * @param prefix - `<service>-<stage>-` @defaultValue `process.env.FUNCTION_PREFIX`
 */
export function deployedFunctionName(
  registry: Registry,
  task: string,
  prefix = process.env.FUNCTION_PREFIX ?? '',
): string {
  const lookup = registry.lookup(task);
  return `${prefix}${taskFunctionKey(lookup.kind === 'task' ? lookup.task.name : task)}`;
}
