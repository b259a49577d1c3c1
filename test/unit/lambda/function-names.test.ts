import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import {
  deployedFunctionName,
  taskFunctionKey,
  taskFunctionKeys,
} from '../../../src/lambda/function-names.js';

const task = (name: string, aliases: string[] = []) =>
  defineTask({ name, queue: 'q', aliases }, () => null);

describe('taskFunctionKey', () => {
  it.each([
    ['ingest.save_event', 'task-ingest-save_event'],
    ['sentry.tasks.do_work', 'task-sentry-tasks-do_work'],
    ['billing:charge', 'task-billing_charge'],
    ['a-b.c', 'task-a-b-c'],
  ])('gives %s the function key %s', (name, key) => {
    // Act
    const found = taskFunctionKey(name);

    // Assess
    expect(found).toBe(key);
  });
});

describe('taskFunctionKeys', () => {
  it('maps every task of the registry to its key', () => {
    // Prepare
    const registry = createRegistry({
      tasks: [task('ingest.save_event'), task('ingest.cleanup')],
      queues: [{ name: 'q' }],
    });

    // Act
    const keys = taskFunctionKeys(registry);

    // Assess
    expect([...keys]).toEqual([
      ['ingest.save_event', 'task-ingest-save_event'],
      ['ingest.cleanup', 'task-ingest-cleanup'],
    ]);
  });

  it('names every task whose key is taken or too long, all at once', () => {
    // Prepare
    const registry = createRegistry({
      tasks: [task('a.b'), task('a-b'), task(`very.${'long'.repeat(10)}`)],
      queues: [{ name: 'q' }],
    });

    // Act
    const check = () => taskFunctionKeys(registry);

    // Assess
    expect(check).toThrow(InvalidConfigError);
    expect(check).toThrow(/tasks\.a-b: function name task-a-b is taken by a\.b/);
    expect(check).toThrow(/is over 40 characters/);
  });
});

describe('deployedFunctionName', () => {
  const registry = createRegistry({
    tasks: [task('ingest.save_event', ['ingest.save'])],
    queues: [{ name: 'q' }],
  });

  it.each([
    ['a task', 'ingest.save_event', 'svc-dev-task-ingest-save_event'],
    ['an alias, as its task', 'ingest.save', 'svc-dev-task-ingest-save_event'],
    ['an unknown name, as is', 'ingest.other', 'svc-dev-task-ingest-other'],
  ])('prefixes the key of %s', (_, name, expected) => {
    // Act
    const found = deployedFunctionName(registry, name, 'svc-dev-');

    // Assess
    expect(found).toBe(expected);
  });
});
