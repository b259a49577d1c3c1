import { describe, expect, it } from 'vitest';
import { InvalidConfigError, UnknownTaskError } from '../../../src/core/errors.js';
import { queueArguments } from '../../../src/core/queue.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';

const save = defineTask(
  { name: 'ingest.save_event', queue: 'events', aliases: ['ingest.save'] },
  () => null,
);
const cleanup = defineTask(
  { name: 'ingest.cleanup', queue: 'events', cron: '* * * * *' },
  () => null,
);
const ingestModule = { save, cleanup, helper: () => 'not a task', VERSION: 2 };

function configIssues(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return (error as InvalidConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
  throw new Error('expected an InvalidConfigError');
}

describe('createRegistry', () => {
  it('registers the tasks a module exports and ignores its other exports', () => {
    const registry = createRegistry({ tasks: [ingestModule], queues: [{ name: 'events' }] });

    expect(registry.tasks.map((task) => task.name)).toEqual([
      'ingest.save_event',
      'ingest.cleanup',
    ]);
    expect(registry.tasksOn('events')).toHaveLength(2);
  });

  it('accepts a task given directly and the same task through two modules once', () => {
    const registry = createRegistry({ tasks: [save, { save }], queues: [{ name: 'events' }] });

    expect(registry.tasks).toEqual([save]);
  });

  it('looks tasks up by name and by alias', () => {
    const registry = createRegistry({ tasks: [ingestModule], queues: [{ name: 'events' }] });

    expect(registry.lookup('ingest.save_event')).toEqual({ kind: 'task', task: save });
    expect(registry.lookup('ingest.save')).toEqual({ kind: 'task', task: save });
  });

  it('returns a typed unregistered outcome for an unknown name', () => {
    const registry = createRegistry({ tasks: [ingestModule], queues: [{ name: 'events' }] });

    const lookup = registry.lookup('sentry.tasks.nope');

    expect(lookup.kind).toBe('unregistered');
    if (lookup.kind === 'unregistered') {
      expect(lookup.error).toBeInstanceOf(UnknownTaskError);
      expect(lookup.error.message).toBe('unregistered task: sentry.tasks.nope');
    }
  });

  it("declares queues with Celery's defaults", () => {
    const registry = createRegistry({ tasks: [], queues: [{ name: 'events' }] });

    expect(registry.queue('events')).toEqual({
      name: 'events',
      durable: true,
      autoDelete: false,
      arguments: {},
      deadLetterQueue: 'events.dlq',
    });
    expect(queueArguments(registry.queue('events') as never)).toEqual({});
  });

  it('carries the options a Python side may declare', () => {
    const registry = createRegistry({
      tasks: [],
      queues: [
        {
          name: 'alerts',
          durable: false,
          maxPriority: 10,
          arguments: { 'x-queue-type': 'classic' },
          deadLetterQueue: 'alerts.dead',
        },
      ],
    });

    const queue = registry.queue('alerts');
    expect(queue).toMatchObject({ durable: false, deadLetterQueue: 'alerts.dead' });
    expect(queueArguments(queue as never)).toEqual({
      'x-queue-type': 'classic',
      'x-max-priority': 10,
    });
  });

  it('reports every problem at once', () => {
    const twin = defineTask({ name: 'ingest.save_event', queue: 'events' }, () => null);
    const aliasThief = defineTask(
      { name: 'other', queue: 'events', aliases: ['ingest.save'] },
      () => null,
    );
    const lost = defineTask({ name: 'lost', queue: 'nowhere' }, () => null);

    const issues = configIssues(() =>
      createRegistry({
        tasks: [ingestModule, { twin, aliasThief, lost }, { notATask: 1 }],
        queues: [{ name: 'events' }, { name: 'events' }, { name: 'bad', durabel: true } as never],
      }),
    );

    expect(issues).toEqual(
      expect.arrayContaining([
        'queues[1].name: queue events is declared twice',
        'queues[2].durabel: unknown option (check the spelling)',
        'tasks[2]: is neither a task nor a module exporting tasks',
        'tasks.ingest.save_event: task name ingest.save_event is already taken by task ingest.save_event',
        'tasks.other: alias ingest.save is already taken by task ingest.save_event',
        'tasks.lost.queue: queue nowhere is not declared (add it to queues)',
      ]),
    );
  });

  it("refuses an alias equal to another task's name", () => {
    const shadowing = defineTask(
      { name: 'x', queue: 'events', aliases: ['ingest.cleanup'] },
      () => null,
    );

    const issues = configIssues(() =>
      createRegistry({ tasks: [ingestModule, shadowing], queues: [{ name: 'events' }] }),
    );

    expect(issues).toEqual([
      'tasks.x: alias ingest.cleanup is already taken by task ingest.cleanup',
    ]);
  });

  it('refuses maxPriority that contradicts x-max-priority', () => {
    const issues = configIssues(() =>
      createRegistry({
        tasks: [],
        queues: [{ name: 'q', maxPriority: 5, arguments: { 'x-max-priority': 10 } }],
      }),
    );

    expect(issues).toEqual([
      "queues[0].maxPriority: conflicts with arguments['x-max-priority'] = 10",
    ]);
  });
});
