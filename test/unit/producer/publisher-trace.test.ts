import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { chain } from '../../../src/core/canvas.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import { SENT_HEADER, traceContextOf, withTraceContext } from '../../../src/core/trace-context.js';
import { toRawDelivery } from '../../../src/core/wire.js';
import { createTaskHandler } from '../../../src/lambda/task-handler.js';
import { publishCall } from '../../../src/producer/publish-call.js';
import { createPublisher } from '../../../src/producer/publisher.js';
import { fakeBroker, fakeContext } from '../../helpers/lambda.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const XRAY = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';

const add = defineTask(
  { name: 'math.add', queue: 'math', args: z.tuple([z.number(), z.number()]) },
  () => null,
);
const registry = createRegistry({ tasks: [add], queues: [{ name: 'math' }] });

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the trace context a producer records', () => {
  it('is the caller-given context on every message of every publish method', async () => {
    // Prepare
    const broker = fakeBroker();
    const publisher = createPublisher(broker, {
      registry,
      traceContext: () => ({ traceparent: TRACEPARENT }),
    });

    // Act
    await publisher.applyAsync(add, { args: [1, 2] });
    await publisher.sendTask('other.app_task', { args: [1] });
    await publisher.applyAsync(chain(add.s({ args: [1, 2] }), add.s({ args: [3] })));

    // Assess
    expect(broker.published).toHaveLength(3);
    for (const message of broker.published) {
      expect(traceContextOf(message)).toEqual({ traceparent: TRACEPARENT });
      expect(Date.parse(String(message.extraHeaders[SENT_HEADER]))).toBeGreaterThan(0);
    }
    expect(broker.published[2]?.embed.chain?.[0]).toMatchObject({
      options: { headers: { traceparent: TRACEPARENT } },
    });
  });

  it('is the Lambda invocation trace by default, as X-Ray and W3C headers', async () => {
    // Prepare
    vi.stubEnv('_X_AMZN_TRACE_ID', XRAY);
    const broker = fakeBroker();

    // Act
    await createPublisher(broker).applyAsync(add, { args: [1, 2] });
    await publishCall(registry, broker, 'math.add', { args: [1, 2] });

    // Assess
    for (const message of broker.published) {
      expect(traceContextOf(message)).toEqual({
        'X-Amzn-Trace-Id': XRAY,
        traceparent: '00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01',
      });
    }
    expect(broker.published).toHaveLength(2);
  });

  it('is nothing outside Lambda without a caller-given context', async () => {
    // Prepare
    vi.stubEnv('_X_AMZN_TRACE_ID', '');
    const broker = fakeBroker();

    // Act
    await createPublisher(broker).applyAsync(add, { args: [1, 2] });

    // Assess
    expect(traceContextOf(broker.published[0] ?? { extraHeaders: {} })).toEqual({});
  });

  it("is the running task's own, for what a task publishes, over the Lambda invocation's", async () => {
    // Prepare: a task that publishes a child, run by its task function under another X-Ray trace.
    vi.stubEnv('_X_AMZN_TRACE_ID', XRAY);
    const broker = fakeBroker();
    const publisher = createPublisher(broker, { registry });
    const parent = defineTask({ name: 'math.parent', queue: 'math' }, async () =>
      publisher.applyAsync(add, { args: [1, 2] }),
    );
    const handler = createTaskHandler(
      createRegistry({ tasks: [add, parent], queues: [{ name: 'math' }] }),
      'math.parent',
      { logger: null, metrics: null },
    );
    const message = withTraceContext(parent.createMessage(), { traceparent: TRACEPARENT });

    // Act
    const { outcomes } = await handler({ messages: [toRawDelivery(message)] }, fakeContext());

    // Assess
    expect(outcomes[0]?.kind).toBe('succeeded');
    expect(broker.published.map(traceContextOf)).toEqual([{ traceparent: TRACEPARENT }]);
  });
});
