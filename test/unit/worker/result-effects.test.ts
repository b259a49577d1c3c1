import { describe, expect, it } from 'vitest';
import { createTaskMessage } from '../../../src/core/message.js';
import type { OutcomeRecord } from '../../../src/core/result-backend.js';
import { settlementFor } from '../../../src/core/settlement.js';
import { performEffects } from '../../../src/worker/effects.js';

const route = () => 'celery';
const message = createTaskMessage({
  task: 'ts.add',
  queue: 'q',
  id: 'aaaaaaaa-0000-4000-8000-000000000001',
  embed: {
    callbacks: [
      { task: 'py.next', args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false },
    ],
    errbacks: null,
    chain: null,
    chord: null,
  },
});
const plain = createTaskMessage({
  task: 'ts.add',
  queue: 'q',
  id: 'bbbbbbbb-0000-4000-8000-000000000002',
});
const succeeded = { kind: 'succeeded', durationMs: 1, result: 3 } as const;

describe('settlements with a result backend', () => {
  it('record the outcome, with the continuations as children', () => {
    const settlement = settlementFor(succeeded, message, {
      route,
      results: { ignoreResult: () => false },
    });
    expect(settlement.effects?.record).toMatchObject({ store: true, outcome: succeeded });
    expect(settlement.effects?.record?.children).toEqual(
      settlement.effects?.publish.map((m) => m.id),
    );
  });

  it('record a plain message too, and honour a task that ignores its result', () => {
    const settlement = settlementFor(succeeded, plain, {
      route,
      results: { ignoreResult: () => true },
    });
    expect(settlement.effects).toMatchObject({ publish: [], record: { store: false } });
  });

  it('record nothing without a backend, or for a duplicate', () => {
    expect(settlementFor(succeeded, plain, { route }).effects).toBeUndefined();
    const duplicate = { kind: 'duplicate', why: 'already-done', durationMs: 1 } as const;
    const results = { ignoreResult: () => false };
    expect(settlementFor(duplicate, plain, { route, results }).effects).toBeUndefined();
  });
});

describe('performEffects with a recording backend', () => {
  it('publishes the continuations, then records (chord bodies through the broker)', async () => {
    const order: string[] = [];
    const settlement = settlementFor(succeeded, message, {
      route,
      results: { ignoreResult: () => false },
    });
    await performEffects([settlement.effects as NonNullable<typeof settlement.effects>], {
      broker: {
        publish: async (messages) => {
          order.push(`publish ${messages.map((m) => m.task).join(',')}`);
        },
      },
      backend: {
        setChordSize: async () => undefined,
        record: async (items: readonly OutcomeRecord[], publish) => {
          order.push(`record ${items.map((item) => item.message.id).join(',')}`);
          await publish([plain]);
        },
      },
    });
    expect(order).toEqual(['publish py.next', `record ${message.id}`, 'publish ts.add']);
  });
});
