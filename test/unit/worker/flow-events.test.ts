/**
 * Celery events from the dispatch flow: every message announced received, started and settled,
 * in that order, in buffered `multi` sends; the worker's presence; and a dispatcher that fails
 * never delaying or failing a settlement.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { workerEvent } from '../../../src/core/celery-events.js';
import type { TaskMessage } from '../../../src/core/message.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import { dispatchBatch } from '../../../src/worker/dispatch.js';
import { EventSender } from '../../../src/worker/event-sender.js';
import { localExecutor } from '../../../src/worker/executor.js';
import { runWorker } from '../../../src/worker/local-worker.js';
import { startPresence } from '../../../src/worker/worker-presence.js';
import { recordingDispatcher } from '../../helpers/event-dispatcher.js';
import { deliveryOf, fakeBroker } from '../../helpers/lambda.js';
import { recordingLogger } from '../../helpers/redis.js';

class FlakyError extends Error {
  override name = 'FlakyError';
}
const ok = defineTask({ name: 'app.ok', queue: 'q' }, (_kwargs, { args }) => args);
const bad = defineTask({ name: 'app.bad', queue: 'q' }, () => {
  throw new TypeError('broken');
});
const flaky = defineTask(
  { name: 'app.flaky', queue: 'q', retry: { on: [FlakyError] }, defaultRetryDelay: 60 },
  () => {
    throw new FlakyError('later');
  },
);
const registry = createRegistry({ tasks: [ok, bad, flaky], queues: [{ name: 'q' }] });

const messageOf = (task: typeof ok | typeof bad | typeof flaky, args: number[] = []) =>
  task.createMessage({ args } as never) as TaskMessage;

afterEach(() => {
  vi.useRealTimers();
});

describe('the flow with events on', () => {
  it('announces each message received, started and settled, in buffered multi sends', async () => {
    // Prepare
    const events = recordingDispatcher();
    const good = messageOf(ok, [1, 2]);
    const failing = messageOf(bad);
    const retried = messageOf(flaky);
    const unknown = { ...messageOf(ok), task: 'app.missing' };
    const expired = { ...messageOf(ok), expires: new Date(Date.now() - 1000) };
    const broker = fakeBroker();

    // Act
    await dispatchBatch(
      broker,
      registry,
      [good, failing, retried, unknown, expired].map((message) => deliveryOf(message)),
      localExecutor(registry, { keepResults: true }),
      { events },
    );

    // Assess
    expect(events.typesOf(good.id)).toEqual(['task-received', 'task-started', 'task-succeeded']);
    expect(events.typesOf(failing.id)).toEqual(['task-received', 'task-started', 'task-failed']);
    expect(events.typesOf(retried.id)).toEqual(['task-received', 'task-started', 'task-retried']);
    expect(events.typesOf(unknown.id)).toEqual(['task-received', 'task-failed']);
    expect(events.typesOf(expired.id)).toEqual(['task-received', 'task-revoked']);
    const succeeded = events.sends
      .flatMap((batch) => batch.events)
      .find((event) => event.type === 'task-succeeded');
    expect(succeeded).toMatchObject({ uuid: good.id, result: '[1, 2]' });
    // One environment's first call: online, never offline.
    expect(events.types()[0]).toBe('worker-online');
    expect(events.types()).not.toContain('worker-offline');
    const taskSends = events.sends.filter((batch) => batch.types[0]?.startsWith('task-'));
    expect(taskSends.every((batch) => batch.multi)).toBe(true);
    // Buffered: far fewer sends than the 13 task events.
    expect(taskSends.length).toBeLessThanOrEqual(4);
    expect(broker.settled()).toHaveLength(5);
  });

  it('beats instead of going online again at the next invocation of the environment', async () => {
    // Prepare
    const events = recordingDispatcher();
    const run = () =>
      dispatchBatch(fakeBroker(), registry, [deliveryOf(messageOf(ok))], localExecutor(registry), {
        events,
      });

    // Act
    await run();
    await run();

    // Assess
    const presence = events.types().filter((type) => type.startsWith('worker-'));
    expect(presence).toEqual(['worker-online', 'worker-heartbeat']);
  });

  it('settles every message when no event can be sent, and warns once for the burst', async () => {
    // Prepare
    const events = recordingDispatcher();
    events.failWith = new Error('broker gone');
    const logger = recordingLogger();
    const broker = fakeBroker();
    const deliveries = [messageOf(ok), messageOf(bad), messageOf(ok)].map((m) => deliveryOf(m));

    // Act
    const settled = await dispatchBatch(broker, registry, deliveries, localExecutor(registry), {
      events,
      logger,
    });

    // Assess
    expect(settled).toHaveLength(3);
    expect(broker.settled()).toHaveLength(3);
    const warnings = logger.warnings.filter((warning) => warning.startsWith('events:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('broker gone');
  });

  it('goes online when a long-lived worker starts and offline after its last outcome', async () => {
    // Prepare
    const events = recordingDispatcher();
    const message = messageOf(ok);
    const broker = fakeBroker({ batches: [[deliveryOf(message)]] });
    const stop = new AbortController();
    const outcome = new Promise<void>((resolve) => {
      setTimeout(resolve, 50);
    }).then(() => stop.abort());

    // Act
    await runWorker(broker, registry, { queues: ['q'], events, signal: stop.signal, waitMs: 10 });
    await outcome;

    // Assess
    const types = events.types();
    expect(types[0]).toBe('worker-online');
    expect(types.at(-1)).toBe('worker-offline');
    expect(types.indexOf('task-succeeded')).toBeLessThan(types.indexOf('worker-offline'));
    const offline = events.sends.at(-1)?.events[0];
    expect(offline).toMatchObject({ processed: 1, active: 0, freq: 2 });
  });
});

describe('startPresence', () => {
  it('beats every freq seconds until stopped, and stops beating then', async () => {
    // Prepare
    vi.useFakeTimers();
    const events = recordingDispatcher();
    const sender = new EventSender(events);

    // Act
    const stop = startPresence(sender, { mode: 'process', freq: 2 });
    await vi.advanceTimersByTimeAsync(6_500);
    await stop();
    await vi.advanceTimersByTimeAsync(10_000);

    // Assess
    expect(events.types()).toEqual([
      'worker-online',
      'worker-heartbeat',
      'worker-heartbeat',
      'worker-heartbeat',
      'worker-offline',
    ]);
    expect(events.sends.every((batch) => !batch.multi)).toBe(true);
  });

  it('lets an environment lapse instead of saying offline', async () => {
    // Prepare
    const events = recordingDispatcher();
    const sender = new EventSender(events);

    // Act
    await startPresence(sender, { mode: 'invocation' })();
    await startPresence(sender, { mode: 'invocation' })();

    // Assess
    expect(events.types()).toEqual(['worker-online', 'worker-heartbeat']);
  });
});

describe('EventSender', () => {
  it('sends what one turn buffers in one multi send, in order', async () => {
    // Prepare
    const events = recordingDispatcher();
    const sender = new EventSender(events);

    // Act
    sender.push([workerEvent('heartbeat', { active: 0, processed: 0 })]);
    sender.push([workerEvent('heartbeat', { active: 1, processed: 1 })]);
    await sender.flushed();

    // Assess
    expect(events.sends).toHaveLength(1);
    expect(events.sends[0]?.multi).toBe(true);
    expect(events.sends[0]?.events.map((event) => event.active)).toEqual([0, 1]);
  });

  it('warns again after a send succeeded between two bursts of failures', async () => {
    // Prepare
    const events = recordingDispatcher();
    const logger = recordingLogger();
    const sender = new EventSender(events, logger);
    const beat = () => sender.send([workerEvent('heartbeat', { active: 0, processed: 0 })]);

    // Act
    events.failWith = new Error('down');
    await beat();
    await beat();
    events.failWith = undefined;
    await beat();
    events.failWith = new Error('down again');
    await beat();

    // Assess
    expect(logger.warnings).toHaveLength(2);
    expect(logger.warnings[1]).toContain('down again');
  });
});
