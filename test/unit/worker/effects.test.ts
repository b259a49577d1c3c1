import { describe, expect, it } from 'vitest';
import type { Broker, SettleItem } from '../../../src/brokers/broker.js';
import type { JsonObject } from '../../../src/core/json.js';
import { EMPTY_EMBED, type TaskMessage } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { INVOKE_FAILURES_HEADER } from '../../../src/core/settlement.js';
import { defineTask } from '../../../src/core/task.js';
import { dispatchBatch } from '../../../src/worker/dispatch.js';
import { performEffects } from '../../../src/worker/effects.js';
import { localExecutor } from '../../../src/worker/executor.js';
import { deliveryOf } from '../../helpers/lambda.js';

const add = defineTask({ name: 'ts.add', queue: 'ts-q' }, (_kwargs, ctx) => {
  const [x, y] = ctx.args as [number, number];
  return x + y;
});
const registry = createRegistry({ tasks: [add], queues: [{ name: 'ts-q' }] });
const sig = (task: string, args: number[], options: JsonObject = {}): JsonObject => ({
  task,
  args,
  kwargs: {},
  options,
  subtask_type: null,
  immutable: false,
});

/** A broker that logs publishes and settles in the order they happen. */
function orderedBroker(failPublish?: Error) {
  const log: string[] = [];
  const published: TaskMessage[] = [];
  const settled: SettleItem[] = [];
  const broker: Pick<Broker, 'publish' | 'settle'> = {
    async publish(messages) {
      log.push(`publish ${messages.map((m) => m.task).join(',')}`);
      if (failPublish) throw failPublish;
      published.push(...messages);
    },
    async settle(items) {
      log.push(`settle ${items.map((i) => i.settlement.kind).join(',')}`);
      settled.push(...items);
    },
  };
  return { broker, log, published, settled };
}

const chained = () => ({
  ...add.createMessage({ args: [1, 2] } as never),
  embed: {
    ...EMPTY_EMBED,
    callbacks: [sig('wf.record', [], { queue: 'py-q' })],
    chain: [sig('ts.add', [10], { task_id: 'step-2' })],
  },
});

describe('continuations in the worker', () => {
  it('publishes a chain step and the callbacks before settling the message', async () => {
    // Prepare
    const { broker, log, published } = orderedBroker();
    const message = chained();

    // Act
    const events = await dispatchBatch(
      broker,
      registry,
      [deliveryOf(message)],
      localExecutor(registry),
    );

    // Assess
    expect(log).toEqual(['publish wf.record,ts.add', 'settle done']);
    expect(published.map((m) => [m.task, m.args, m.routingKey, m.parentId])).toEqual([
      ['wf.record', [3], 'py-q', message.id],
      ['ts.add', [3, 10], 'ts-q', message.id],
    ]);
    expect(events[0]?.outcome).toMatchObject({ kind: 'succeeded', result: 3 });
  });

  it('re-queues the message as a failed attempt, never done, when publishing fails', async () => {
    // Prepare
    const { broker, log, settled } = orderedBroker(new Error('connection lost'));
    const message = chained();
    const warnings: string[] = [];
    const logger = { warn: (text: string) => warnings.push(text) };

    // Act
    const events = await dispatchBatch(
      broker,
      registry,
      [deliveryOf(message)],
      localExecutor(registry),
      { logger },
    );

    // Assess
    expect(log).toEqual(['publish wf.record,ts.add', 'settle retry-later']);
    const [item] = settled;
    expect(item?.settlement.kind === 'retry-later' && item.settlement.message).toMatchObject({
      id: message.id,
      retries: 0,
      extraHeaders: { [INVOKE_FAILURES_HEADER]: 1 },
    });
    expect(events[0]?.outcome).toMatchObject({
      kind: 'invoke-failed',
      detail: expect.stringMatching(/continuations could not be published: connection lost/),
      dead: false,
    });
    expect(warnings).toEqual([expect.stringContaining(`ts.add ${message.id}: its continuations`)]);
  });

  it('settles messages without a workflow in the same call, publishing nothing for them', async () => {
    const { broker, log } = orderedBroker();
    const plain = add.createMessage({ args: [1, 1] } as never);

    await dispatchBatch(
      broker,
      registry,
      [deliveryOf(plain), deliveryOf(chained())],
      localExecutor(registry),
    );

    expect(log).toEqual(['publish wf.record,ts.add', 'settle done,done']);
  });

  it('dead-letters a workflow it cannot honour before running it, publishing nothing', async () => {
    const { broker, log, settled } = orderedBroker();
    const message = {
      ...add.createMessage({ args: [1, 2] } as never),
      embed: { ...EMPTY_EMBED, chord: sig('wf.tsum', []) },
    };

    const [event] = await dispatchBatch(
      broker,
      registry,
      [deliveryOf(message)],
      localExecutor(registry),
    );

    expect(log).toEqual(['settle dead-letter']);
    expect(settled[0]?.settlement).toMatchObject({
      kind: 'dead-letter',
      reason: { reason: 'unsupported-workflow', detail: expect.stringMatching(/chord part/) },
    });
    expect(event?.outcome.kind).toBe('dead');
  });
});

describe('performEffects', () => {
  it('refuses chord sizes without a result backend', async () => {
    const { broker } = orderedBroker();
    const effects = [{ publish: [], chordSizes: [{ groupId: 'g', size: 2 }] }];

    await expect(performEffects(effects, { broker })).rejects.toThrow(/need a result backend/);
  });

  it('stores chord sizes before publishing', async () => {
    const log: string[] = [];
    const broker = {
      publish: async () => {
        log.push('publish');
      },
    };
    const backend = {
      setChordSize: async () => {
        log.push('size');
      },
    };
    const message = add.createMessage({ args: [1, 1] } as never);

    await performEffects([{ publish: [message], chordSizes: [{ groupId: 'g', size: 1 }] }], {
      broker,
      backend,
    });

    expect(log).toEqual(['size', 'publish']);
  });
});
