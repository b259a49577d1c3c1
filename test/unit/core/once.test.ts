import { describe, expect, it } from 'vitest';
import { memoryOnceStore } from '../../../src/core/once-store.js';
import { createRegistry } from '../../../src/core/registry.js';
import { runMessage } from '../../../src/core/run-task.js';
import { defineTask } from '../../../src/core/task.js';
import { RetryableError } from '../../helpers/factories.js';

function setup() {
  const runs: string[] = [];
  let failNext = false;
  const once = defineTask(
    { name: 'once', queue: 'q', atMostOnce: true, retry: { on: [RetryableError] } },
    (_, ctx) => {
      runs.push(`${ctx.id}#${ctx.retries}`);
      if (failNext) throw new RetryableError('flaky');
    },
  );
  const idempotent = defineTask({ name: 'idem', queue: 'q', idempotent: true }, (_, ctx) => {
    runs.push(`${ctx.id}#${ctx.retries}`);
    if (failNext) throw new RangeError('failed');
  });
  const registry = createRegistry({ tasks: [once, idempotent], queues: [{ name: 'q' }] });
  return {
    runs,
    once,
    idempotent,
    registry,
    store: memoryOnceStore(),
    failing: (value: boolean) => {
      failNext = value;
    },
  };
}

describe('atMostOnce tasks', () => {
  it('run an attempt once, however often it is delivered', async () => {
    const { runs, once, registry, store } = setup();
    const message = once.createMessage();

    const first = await runMessage(registry, message, { store });
    const again = await runMessage(registry, { ...message, redelivered: true }, { store });

    expect(first.kind).toBe('succeeded');
    expect(again).toMatchObject({ kind: 'duplicate', why: 'at-most-once' });
    expect(runs).toEqual([`${message.id}#0`]);
  });

  it('still run each retry once: the attempt is id and retries', async () => {
    const { runs, once, registry, store, failing } = setup();
    const message = once.createMessage();
    failing(true);

    const first = await runMessage(registry, message, { store });
    failing(false);
    const retry = await runMessage(registry, { ...message, retries: 1 }, { store });

    expect(first.kind).toBe('retry');
    expect(retry.kind).toBe('succeeded');
    expect(runs).toEqual([`${message.id}#0`, `${message.id}#1`]);
  });

  it('refuse to run without a store rather than run unguarded', async () => {
    const { once, registry } = setup();

    await expect(runMessage(registry, once.createMessage())).rejects.toThrow(/need a once store/);
  });
});

describe('idempotent tasks', () => {
  it('skip an id that already succeeded', async () => {
    const { runs, idempotent, registry, store } = setup();
    const message = idempotent.createMessage();

    await runMessage(registry, message, { store });
    const again = await runMessage(registry, { ...message, redelivered: true }, { store });

    expect(again).toMatchObject({ kind: 'duplicate', why: 'already-done' });
    expect(runs).toHaveLength(1);
  });

  it('run an id again when the earlier run failed', async () => {
    const { runs, idempotent, registry, store, failing } = setup();
    const message = idempotent.createMessage();
    failing(true);
    await runMessage(registry, message, { store });
    failing(false);

    const again = await runMessage(registry, message, { store });

    expect(again.kind).toBe('succeeded');
    expect(runs).toHaveLength(2);
  });
});
