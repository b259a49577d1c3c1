import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type ChordSize, chain, chord, group } from '../../../src/core/canvas.js';
import { InvalidArgumentsError, InvalidConfigError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { signature } from '../../../src/core/signature.js';
import { defineTask } from '../../../src/core/task.js';
import { createPublisher } from '../../../src/producer/publisher.js';
import { fakeBroker } from '../../helpers/lambda.js';

const add = defineTask(
  { name: 'wf.add', queue: 'ts_queue', args: z.tuple([z.number(), z.number()]) },
  (_kwargs, ctx) => ctx.args[0] + ctx.args[1],
);
const registry = createRegistry({ tasks: [add], queues: [{ name: 'ts_queue' }] });

/** A chord-size store that records into the same log as the broker's publishes. */
function recordingBackend(log: string[]) {
  const sizes: ChordSize[] = [];
  return {
    sizes,
    async setChordSize(items: readonly ChordSize[]) {
      log.push('setChordSize');
      sizes.push(...items);
    },
  };
}

describe('Publisher.applyAsync of a signature', () => {
  it('publishes the first step of a chain and resolves to the last step id', async () => {
    // Prepare
    const broker = fakeBroker();

    // Act
    const id = await createPublisher(broker).applyAsync(
      chain(add.s({ args: [1, 2] }), add.s({ args: [3] })),
    );

    // Assess
    const [first] = broker.published;
    expect(broker.published).toHaveLength(1);
    expect(first).toMatchObject({ task: 'wf.add', args: [1, 2], routingKey: 'ts_queue' });
    expect(first?.embed.chain).toEqual([
      expect.objectContaining({ args: [3], options: { queue: 'ts_queue', task_id: id } }),
    ]);
    expectTypeOf(createPublisher(broker).applyAsync(group())).toEqualTypeOf<Promise<string>>();
  });

  it('prepends the call args and applies the call options', async () => {
    // Prepare
    const broker = fakeBroker();

    // Act
    await createPublisher(broker).applyAsync(signature('py.mul', { args: [2] }), {
      args: [21],
      queue: 'py_queue',
      priority: 3,
    });

    // Assess
    expect(broker.published[0]).toMatchObject({
      task: 'py.mul',
      args: [21, 2],
      routingKey: 'py_queue',
      priority: 3,
    });
  });

  it('refuses a chord without a result backend, saying why, and sends nothing', async () => {
    // Prepare
    const broker = fakeBroker();

    // Act
    const sent = createPublisher(broker).applyAsync(
      chord([add.s({ args: [1, 1] })], signature('wf.tsum')),
    );

    // Assess
    await expect(sent).rejects.toThrow(InvalidConfigError);
    await expect(sent).rejects.toThrow(/a chord needs a result backend/);
    expect(broker.published).toEqual([]);
  });

  it('stores the chord size before any header message is published', async () => {
    // Prepare
    const log: string[] = [];
    const broker = fakeBroker();
    const publish = broker.publish.bind(broker);
    broker.publish = async (messages) => {
      log.push(`publish ${messages.length}`);
      await publish(messages);
    };
    const backend = recordingBackend(log);

    // Act
    const id = await createPublisher(broker, { resultBackend: backend }).applyAsync(
      chord([add.s({ args: [1, 1] }), add.s({ args: [2, 2] })], signature('wf.tsum')),
    );

    // Assess
    expect(log).toEqual(['setChordSize', 'publish 2']);
    expect(backend.sizes).toEqual([{ groupId: broker.published[0]?.group, size: 2 }]);
    expect(broker.published[0]?.embed.chord).toMatchObject({ options: { task_id: id } });
  });

  it('refuses options out of range before anything is sent', async () => {
    const sent = createPublisher(fakeBroker()).applyAsync(add.s(), { priority: 999 });
    await expect(sent).rejects.toThrow(InvalidArgumentsError);
  });
});

describe('Publisher.sendTask', () => {
  it('publishes a name this app does not declare, unchecked, to the given queue', async () => {
    // Prepare
    const broker = fakeBroker();
    const callback = signature('py.notify');

    // Act
    const id = await createPublisher(broker, { registry }).sendTask('py.report', {
      args: [1],
      kwargs: { k: 'v' },
      queue: 'py_queue',
      countdown: 5,
      link: callback,
      linkError: [callback],
      ignoreResult: true,
    });

    // Assess
    expect(broker.published).toEqual([
      expect.objectContaining({
        id,
        task: 'py.report',
        args: [1],
        kwargs: { k: 'v' },
        routingKey: 'py_queue',
        ignoreResult: true,
        embed: { callbacks: [callback], errbacks: [callback], chain: null, chord: null },
      }),
    ]);
    expect(broker.published[0]?.eta).not.toBeNull();
  });

  it("routes a name without a queue to Celery's default queue", async () => {
    const broker = fakeBroker();
    await createPublisher(broker).sendTask('py.report');
    expect(broker.published[0]?.routingKey).toBe('celery');
  });

  it("checks a declared name against its schema and uses the task's queue", async () => {
    // Prepare
    const broker = fakeBroker();
    const publisher = createPublisher(broker, { registry });

    // Act
    await publisher.sendTask('wf.add', { args: [1, 2] });
    const bad = publisher.sendTask('wf.add', { args: ['x'] });

    // Assess
    expect(broker.published[0]?.routingKey).toBe('ts_queue');
    await expect(bad).rejects.toThrow(InvalidArgumentsError);
  });

  it('refuses arguments that are not JSON', async () => {
    const sent = createPublisher(fakeBroker()).sendTask('py.report', { args: [Number.NaN] });
    await expect(sent).rejects.toThrow(/args\[0\]/);
  });
});
