import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import type { WorkerEvent } from '../../../src/worker/dispatch.js';
import { localExecutor } from '../../../src/worker/executor.js';
import { processBatch, runWorker } from '../../../src/worker/local-worker.js';
import { expectDecoded } from '../../helpers/decode.js';
import { deliveryOf, fakeBroker, SUCCEEDED, scriptedExecutor } from '../../helpers/lambda.js';
import { recordingLogger } from '../../helpers/redis.js';

const ran: string[] = [];
const echo = defineTask({ name: 'app.echo', queue: 'a' }, async (kwargs: { n?: number }, ctx) => {
  // Later messages finish first: outcomes must still come back in message order.
  await new Promise((resolve) => setTimeout(resolve, 30 - (kwargs.n ?? 0) * 10));
  ran.push(ctx.id);
  if (kwargs.n === 2) throw new TypeError('two is a bug');
  return kwargs.n;
});
const other = defineTask({ name: 'app.other', queue: 'b' }, () => null);
const registry = createRegistry({ tasks: [echo, other], queues: [{ name: 'a' }, { name: 'b' }] });

describe('localExecutor', () => {
  it('runs a batch in this process and answers one outcome per message, in order', async () => {
    // Prepare
    const sent = [0, 1, 2].map((n) => echo.createMessage({ kwargs: { n } }));

    // Act
    const outcomes = await localExecutor(registry).execute('app.echo', sent);

    // Assess
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(['succeeded', 'succeeded', 'dead']);
    expect(outcomes[2]).toMatchObject({ reason: { reason: 'not-retryable', id: sent[2]?.id } });
  });
});

describe('runWorker', () => {
  it('takes batches from its queues in turn and settles each through the executor', async () => {
    // Prepare
    const first = echo.createMessage();
    const second = other.createMessage();
    const broker = fakeBroker({ batches: [[deliveryOf(first)], [deliveryOf(second)]] });
    const executor = scriptedExecutor((_, messages) => messages.map(() => SUCCEEDED));
    const events: WorkerEvent[] = [];

    // Act
    await runWorker(broker, registry, {
      queues: ['a', 'b'],
      executor,
      keepTaking: () => broker.receivedFrom.length < 3,
      onOutcome: (event) => events.push(event),
    });

    // Assess
    expect(broker.receivedFrom).toEqual(['a', 'b', 'a']);
    expect(executor.calls.map((call) => call.task)).toEqual(['app.echo', 'app.other']);
    expect(broker.settled()).toEqual([
      { delivery: deliveryOf(first), settlement: { kind: 'done' } },
      { delivery: deliveryOf(second), settlement: { kind: 'done' } },
    ]);
    expect(events).toHaveLength(2);
  });

  it('takes no more than its prefetch per receive, and puts back what it did not start', async () => {
    // Prepare
    const sent = Array.from({ length: 5 }, () => echo.createMessage());
    const broker = fakeBroker({ batches: [sent.map((message) => deliveryOf(message))] });
    const executor = scriptedExecutor((_, messages) => messages.map(() => SUCCEEDED), 1);

    // Act
    await runWorker(broker, registry, {
      queues: ['a'],
      concurrency: 2,
      prefetchMultiplier: 1.5,
      executor,
      keepTaking: () => broker.receivedFrom.length < 1,
    });

    // Assess
    expect(executor.calls).toHaveLength(2);
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual([
      'retry-later',
      'done',
      'done',
    ]);
  });

  it('does not start when its signal is already aborted', async () => {
    // Prepare
    const broker = fakeBroker();

    // Act
    await runWorker(broker, registry, { queues: ['a'], signal: AbortSignal.abort() });

    // Assess
    expect(broker.receivedFrom).toEqual([]);
  });

  it('reports broker trouble and keeps going instead of failing', async () => {
    // Prepare
    const logger = recordingLogger();
    const healthy = fakeBroker({ batches: [[deliveryOf(echo.createMessage())]] });
    let receives = 0;
    const broker = {
      ...healthy,
      async receive(queue: string, options: { max: number; waitMs: number }) {
        receives++;
        if (receives === 1) throw new Error('READONLY You can not write against a replica');
        return healthy.receive(queue, options);
      },
    };

    // Act
    await runWorker(broker, registry, {
      queues: ['a'],
      logger,
      executor: scriptedExecutor((_, messages) => messages.map(() => SUCCEEDED)),
      keepTaking: () => receives < 2,
    });

    // Assess
    expect(logger.warnings).toEqual([
      'worker: READONLY You can not write against a replica; retrying in 200 ms',
    ]);
    expect(healthy.settled().map((item) => item.settlement)).toEqual([{ kind: 'done' }]);
  });
});

describe('processBatch', () => {
  it('runs held deliveries in this process and settles each from its own outcome', async () => {
    // Prepare
    ran.length = 0;
    const sent = [
      echo.createMessage({ kwargs: { n: 1 } }),
      echo.createMessage({ kwargs: { n: 2 } }),
    ];
    const broker = fakeBroker();

    // Act
    const events = await processBatch(
      broker,
      registry,
      sent.map((message) => deliveryOf(message)),
    );

    // Assess
    expect(ran.sort()).toEqual(sent.map((message) => message.id).sort());
    const kindById = new Map(
      events.map((event) => [expectDecoded(event.delivery.result).id, event.outcome.kind]),
    );
    expect(kindById).toEqual(
      new Map([
        [sent[0]?.id, 'succeeded'],
        [sent[1]?.id, 'dead'],
      ]),
    );
    expect(broker.settled()).toHaveLength(2);
  });
});
