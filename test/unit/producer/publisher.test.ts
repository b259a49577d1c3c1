import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  BrokerError,
  InvalidArgumentsError,
  PayloadTooLargeError,
} from '../../../src/core/errors.js';
import { defineTask } from '../../../src/core/task.js';
import { createPublisher, type Publisher } from '../../../src/producer/publisher.js';
import { fakeBroker } from '../../helpers/lambda.js';

const saveEvent = defineTask(
  {
    name: 'ingest.save_event',
    queue: 'events',
    kwargs: z.object({ event_id: z.string().min(1), source: z.enum(['api', 'cron']).optional() }),
    maxArgumentBytes: 256,
  },
  () => null,
);
const resize = defineTask(
  { name: 'media.resize', queue: 'media', args: z.tuple([z.string(), z.number()]) },
  () => null,
);

describe('createPublisher', () => {
  it('types delay by the kwargs schema of the task', () => {
    const publisher = createPublisher(fakeBroker());
    // Checked by the compiler only: these calls are never made.
    const wrongCalls = () => {
      // @ts-expect-error event_id must be a string
      void publisher.delay(saveEvent, { event_id: 42 });
      // @ts-expect-error source is one of api, cron
      void publisher.delay(saveEvent, { event_id: 'evt-1', source: 'mail' });
    };

    expectTypeOf(wrongCalls).returns.toBeVoid();
    expectTypeOf(publisher.delay(saveEvent, { event_id: 'evt-1' })).toEqualTypeOf<
      Promise<string>
    >();
  });

  it('types applyAsync by the args and kwargs schemas and the call options', () => {
    const publisher: Publisher = createPublisher(fakeBroker());
    // Checked by the compiler only: these calls are never made.
    const wrongCalls = () => {
      // @ts-expect-error args are [string, number]
      void publisher.applyAsync(resize, { args: [200, 'a.png'] });
      // @ts-expect-error eta is a Date
      void publisher.applyAsync(saveEvent, { kwargs: { event_id: 'e' }, eta: '2030-01-01' });
      // @ts-expect-error a task name is not a task: pass the task itself
      void publisher.applyAsync('ingest.save_event', {});
    };

    expectTypeOf(wrongCalls).returns.toBeVoid();
    expectTypeOf(
      publisher.applyAsync(resize, { args: ['a.png', 200], countdown: 5, priority: 1 }),
    ).toEqualTypeOf<Promise<string>>();
  });

  it('publishes delay(task, kwargs) as one message and resolves to its id', async () => {
    // Prepare
    const broker = fakeBroker();

    // Act
    const id = await createPublisher(broker).delay(saveEvent, { event_id: 'evt-1' });

    // Assess
    expect(broker.published).toEqual([
      expect.objectContaining({
        id,
        task: 'ingest.save_event',
        routingKey: 'events',
        args: [],
        kwargs: { event_id: 'evt-1' },
        eta: null,
      }),
    ]);
  });

  it('publishes applyAsync with its options', async () => {
    // Prepare
    const broker = fakeBroker();
    const eta = new Date('2030-01-01T00:00:00Z');

    // Act
    const id = await createPublisher(broker).applyAsync(resize, {
      args: ['a.png', 200],
      eta,
      priority: 4,
      id: 'resize-1',
    });

    // Assess
    expect(id).toBe('resize-1');
    expect(broker.published).toEqual([
      expect.objectContaining({ id, args: ['a.png', 200], eta, priority: 4, routingKey: 'media' }),
    ]);
  });

  it('publishes delay(task) with no kwargs as an empty call', async () => {
    // Prepare
    const broker = fakeBroker();

    // Act
    await createPublisher(broker).applyAsync(resize, { args: ['b.png', 1] });
    const sent = createPublisher(broker).delay(saveEvent);

    // Assess
    await expect(sent).rejects.toThrow(InvalidArgumentsError);
    expect(broker.published).toHaveLength(1);
  });

  it.each([
    ['arguments failing the schema', { event_id: '' }, InvalidArgumentsError],
    ['arguments over maxArgumentBytes', { event_id: 'x'.repeat(300) }, PayloadTooLargeError],
  ])('refuses %s before anything is sent', async (_, kwargs, error) => {
    // Prepare
    const broker = fakeBroker();

    // Act
    const sent = createPublisher(broker).delay(saveEvent, kwargs);

    // Assess
    await expect(sent).rejects.toThrow(error);
    expect(broker.published).toEqual([]);
  });

  it('passes on the BrokerError of an unreachable broker', async () => {
    // Prepare
    const broker = fakeBroker({ failWith: new BrokerError('down') });

    // Act
    const sent = createPublisher(broker).delay(saveEvent, { event_id: 'evt-1' });

    // Assess
    await expect(sent).rejects.toThrow(BrokerError);
  });
});
