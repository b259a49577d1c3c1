import { describe, expect, it } from 'vitest';
import { runLocalPoller } from '../../../src/cli/local-poller.js';
import type { OutcomeRecord } from '../../../src/core/result-backend.js';
import type { WorkerEvent } from '../../../src/worker/dispatch.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { deliveryOf, fakeBroker, inProcessInvoker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });

/** A result backend that records what it is asked to store. */
function recordingBackend(): {
  readonly recorded: OutcomeRecord[];
  setChordSize(): Promise<void>;
  record(items: readonly OutcomeRecord[]): Promise<void>;
} {
  const recorded: OutcomeRecord[] = [];
  return {
    recorded,
    setChordSize: async () => {},
    record: async (items) => {
      recorded.push(...items);
    },
  };
}

describe('runLocalPoller', () => {
  it.each([
    ['stores what the task functions return in the result backend it is given', true],
    ['stores nothing without one', false],
  ])('%s', async (_, withBackend) => {
    // Prepare
    const message = app.add.createMessage({ kwargs: { x: 1, y: 2 } });
    const broker = fakeBroker({ batches: [[deliveryOf(message)]] });
    const backend = recordingBackend();
    const stop = new AbortController();
    const events: WorkerEvent[] = [];

    // Act
    await runLocalPoller({
      broker,
      registry: app.registry,
      // Their RESULT_BACKEND makes the task functions return results.
      client: inProcessInvoker(app.registry, {
        prefix: 'svc-dev-',
        handler: { results: withBackend },
      }),
      functionPrefix: 'svc-dev-',
      signal: stop.signal,
      onOutcome: (event) => {
        events.push(event);
        stop.abort();
      },
      warn: () => {},
      ...(withBackend ? { resultBackend: backend } : {}),
    });

    // Assess
    expect(events.map((event) => event.outcome.kind)).toEqual(['succeeded']);
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual(['done']);
    expect(backend.recorded).toMatchObject(
      withBackend
        ? [{ message: { id: message.id }, outcome: { kind: 'succeeded', result: 3 } }]
        : [],
    );
  });
});
