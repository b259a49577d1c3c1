/**
 * `task-sent` from a publisher with events on: one event per published message, after the
 * broker has them; a failed send never fails the publish.
 */
import { describe, expect, it } from 'vitest';
import { BrokerError } from '../../../src/core/errors.js';
import { defineTask } from '../../../src/core/task.js';
import { createPublisher } from '../../../src/producer/publisher.js';
import { recordingDispatcher } from '../../helpers/event-dispatcher.js';
import { fakeBroker } from '../../helpers/lambda.js';
import { recordingLogger } from '../../helpers/redis.js';

const add = defineTask({ name: 'math.add', queue: 'math' }, () => 0);

describe('createPublisher with events', () => {
  it('sends task-sent for each published message, with its routing', async () => {
    // Prepare
    const events = recordingDispatcher('ts1@producer');
    const broker = fakeBroker();
    const publisher = createPublisher(broker, { events });

    // Act
    const id = await publisher.applyAsync(add, { args: [1, 2] });
    const other = await publisher.sendTask('other.app.task', { args: ['x'], queue: 'elsewhere' });

    // Assess
    expect(events.sends.map((batch) => batch.types)).toEqual([['task-sent'], ['task-sent']]);
    expect(events.sends[0]?.events[0]).toMatchObject({
      uuid: id,
      name: 'math.add',
      // The message's own argsrepr, as a Celery worker reports it.
      args: broker.published[0]?.argsrepr,
      queue: 'math',
      routing_key: 'math',
      retries: 0,
    });
    expect(events.sends[1]?.events[0]).toMatchObject({ uuid: other, queue: 'elsewhere' });
    expect(broker.published.map((message) => message.id)).toEqual([id, other]);
  });

  it('publishes even when the event cannot be sent, and warns once for the burst', async () => {
    // Prepare
    const events = recordingDispatcher();
    events.failWith = new BrokerError('Redis at x: connection refused');
    const logger = recordingLogger();
    const broker = fakeBroker();
    const publisher = createPublisher(broker, { events, logger });

    // Act
    await publisher.applyAsync(add, { args: [1, 2] });
    await publisher.applyAsync(add, { args: [3, 4] });

    // Assess
    expect(broker.published).toHaveLength(2);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toContain('connection refused');
  });

  it('sends nothing when the publish itself failed', async () => {
    // Prepare
    const events = recordingDispatcher();
    const publisher = createPublisher(fakeBroker({ failWith: new BrokerError('down') }), {
      events,
    });

    // Act
    const publishing = publisher.applyAsync(add, { args: [1, 2] });

    // Assess
    await expect(publishing).rejects.toThrow('down');
    expect(events.sends).toEqual([]);
  });
});
