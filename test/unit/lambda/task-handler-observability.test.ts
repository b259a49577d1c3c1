/**
 * What the task function writes besides its answer: one Powertools log line per attempt (with the
 * Lambda context and the producer's trace) and CloudWatch EMF metrics, captured from the real
 * Powertools Logger and Metrics as they write to standard output and error.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import { withTraceContext } from '../../../src/core/trace-context.js';
import { type RawDelivery, toRawDelivery } from '../../../src/core/wire.js';
import { createLogger } from '../../../src/lambda/logging.js';
import { createMetrics, TASK_METRICS } from '../../../src/lambda/metrics.js';
import { createTaskHandler } from '../../../src/lambda/task-handler.js';
import { RetryableError } from '../../helpers/factories.js';
import { fakeContext } from '../../helpers/lambda.js';
import { captureOutput, emfBlobs, expectValidEmf } from '../../helpers/observability.js';

const QUEUE = 'obs';
const SECRET = 'hunter2-password-in-kwargs';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const job = defineTask(
  {
    name: 'obs.job',
    queue: QUEUE,
    kwargs: z.object({ mode: z.enum(['ok', 'retry', 'throw']), password: z.string() }),
    retry: { on: [RetryableError] },
    defaultRetryDelay: 10,
  },
  async ({ mode }) => {
    if (mode === 'retry') throw new RetryableError('store busy');
    if (mode === 'throw') throw new TypeError('a bug');
    return 'done';
  },
);
const registry = createRegistry({ tasks: [job], queues: [{ name: QUEUE }] });

const rawOf = (mode: 'ok' | 'retry' | 'throw', traced = false): RawDelivery => {
  const message = job.createMessage({ kwargs: { mode, password: SECRET } });
  return toRawDelivery(
    traced
      ? withTraceContext(message, { traceparent: TRACEPARENT }, new Date(Date.now() - 250))
      : message,
  );
};

describe('the task function observability', () => {
  let output: ReturnType<typeof captureOutput>;
  beforeEach(() => {
    output = captureOutput();
  });
  afterEach(() => {
    output.restore();
    vi.unstubAllEnvs();
  });

  it('logs one JSON line per attempt with the Lambda context, the trace and no argument value', async () => {
    // Prepare
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    const handler = createTaskHandler(registry, 'obs.job', {
      logger: createLogger(),
      metrics: null,
    });
    const context = fakeContext({ functionName: 'svc-dev-task-obs-job' });
    const batch = [rawOf('ok', true), rawOf('retry'), rawOf('throw')];

    // Act
    await handler({ messages: batch }, context);
    await handler({ messages: [rawOf('ok')] }, fakeContext());

    // Assess
    const all = output.jsonLines().filter((line) => 'outcome' in line);
    expect(all.map((line) => line.cold_start)).toEqual([true, true, true, false]);
    const lines = all.slice(0, 3);
    const byOutcome = Object.fromEntries(lines.map((line) => [line.outcome, line]));
    expect(byOutcome.succeeded).toMatchObject({
      level: 'INFO',
      message: 'task obs.job succeeded',
      service: 'serverless-celery',
      task: 'obs.job',
      id: (batch[0] as RawDelivery & { headers: { id: string } }).headers.id,
      queue: QUEUE,
      retries: 0,
      duration_ms: expect.any(Number),
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      parent_span_id: '00f067aa0ba902b7',
      function_request_id: context.awsRequestId,
      function_name: 'svc-dev-task-obs-job',
    });
    expect(byOutcome.succeeded?.delay_ms).toBeGreaterThanOrEqual(250);
    expect(byOutcome.retry).toMatchObject({
      level: 'WARN',
      error_type: 'RetryableError',
      error_message: 'store busy',
    });
    // Powertools leaves out empty keys: an untraced message's line has no trace id.
    expect(byOutcome.retry?.trace_id ?? null).toBeNull();
    expect(byOutcome.dead).toMatchObject({
      level: 'ERROR',
      reason: 'not-retryable',
      error_type: 'TypeError',
      error_message: 'a bug',
    });
    expect(output.text()).not.toContain(SECRET);
  });

  it('writes only the lines at or above POWERTOOLS_LOG_LEVEL', async () => {
    // Prepare
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'ERROR');
    const handler = createTaskHandler(registry, 'obs.job', {
      logger: createLogger(),
      metrics: null,
    });

    // Act
    await handler({ messages: [rawOf('ok'), rawOf('retry'), rawOf('throw')] }, fakeContext());

    // Assess
    const outcomes = output
      .jsonLines()
      .flatMap((line) => ('outcome' in line ? [line.outcome] : []));
    expect(outcomes).toEqual(['dead']);
  });

  it('emits EMF per task and queue, and dead letters per reason, in the namespace of the env', async () => {
    // Prepare
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'Shop');
    vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'orders');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    const handler = createTaskHandler(registry, 'obs.job', {
      logger: null,
      metrics: createMetrics(),
    });

    // Act
    await handler(
      { messages: [rawOf('ok', true), rawOf('ok'), rawOf('retry'), rawOf('throw')] },
      fakeContext(),
    );

    // Assess: the environment's cold start, then the invocation's metrics.
    const [coldStart, ...blobs] = emfBlobs(output.jsonLines());
    expect(coldStart).toMatchObject({ ColdStart: 1, service: 'orders' });
    expect(blobs).toHaveLength(2);
    for (const blob of blobs) expectValidEmf(blob);
    const [outcomes, dead] = blobs as [Record<string, unknown>, Record<string, unknown>];
    expect(outcomes).toMatchObject({
      service: 'orders',
      task: 'obs.job',
      queue: QUEUE,
      [TASK_METRICS.succeeded]: 2,
      [TASK_METRICS.retried]: 1,
      [TASK_METRICS.failed]: 1,
    });
    expect(outcomes[TASK_METRICS.duration]).toHaveLength(4);
    expect(outcomes[TASK_METRICS.queueLatency]).toBeGreaterThanOrEqual(250);
    const directive = (outcomes._aws as { CloudWatchMetrics: { Namespace: string }[] })
      .CloudWatchMetrics[0];
    expect(directive?.Namespace).toBe('Shop');
    expect(dead).toMatchObject({ reason: 'not-retryable', [TASK_METRICS.deadLettered]: 1 });
    expect(output.text()).not.toContain(SECRET);
  });

  it('counts a cold start once per execution environment', async () => {
    // Prepare: Lambda's own variable (provisioned environments are not counted).
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    const handler = createTaskHandler(registry, 'obs.job', {
      logger: null,
      metrics: createMetrics(),
    });

    // Act
    await handler({ messages: [rawOf('ok')] }, fakeContext());
    await handler({ messages: [rawOf('ok')] }, fakeContext());

    // Assess
    const coldStarts = emfBlobs(output.jsonLines()).filter((blob) => 'ColdStart' in blob);
    expect(coldStarts).toHaveLength(1);
    expectValidEmf(coldStarts[0] as Record<string, unknown>);
    expect(coldStarts[0]).toMatchObject({
      ColdStart: 1,
      function_name: fakeContext().functionName,
    });
  });
});
