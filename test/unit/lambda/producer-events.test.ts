/**
 * `task-sent` from the producer functions: sent for what they publish when the runtime has
 * events on; nothing when it has none, or when nothing was published.
 */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import { createInvokeProducerHandler } from '../../../src/lambda/producer-handlers.js';
import { recordingDispatcher } from '../../helpers/event-dispatcher.js';
import { fakeBroker, fakeContext, fakeRuntime } from '../../helpers/lambda.js';

const add = defineTask({ name: 'math.add', queue: 'math' }, () => 0);
const registry = createRegistry({ tasks: [add], queues: [{ name: 'math' }] });

describe('the invoke producer with events on', () => {
  it('sends task-sent for the message it published', async () => {
    // Prepare
    const broker = fakeBroker();
    const events = recordingDispatcher('svc-dev-producer@abc');
    const handler = createInvokeProducerHandler({
      ...fakeRuntime(registry, broker),
      events: () => events,
    });

    // Act
    const result = await handler({ task: 'math.add', args: [1, 2] } as never, fakeContext());

    // Assess
    expect(result).toMatchObject({ status: 202 });
    expect(events.types()).toEqual(['task-sent']);
    expect(events.sends[0]?.events[0]).toMatchObject({
      uuid: broker.published[0]?.id,
      name: 'math.add',
      queue: 'math',
    });
  });

  it('sends nothing for a call it refused', async () => {
    // Prepare
    const events = recordingDispatcher();
    const handler = createInvokeProducerHandler({
      ...fakeRuntime(registry, fakeBroker()),
      events: () => events,
    });

    // Act
    const result = await handler({ task: 'math.nope' } as never, fakeContext());

    // Assess
    expect(result).toMatchObject({ status: 404 });
    expect(events.sends).toEqual([]);
  });
});
