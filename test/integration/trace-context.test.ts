/**
 * A trace set at the producer, followed through the queue on Redis and on RabbitMQ (`BROKERS`):
 * it is in the log line (the worker's JSON line, `--log-format json`) of every attempt of the
 * task, after a retry, and in the line of a chain step of ours that real Celery 5.2.6 sent after
 * running the step before it (ours → Python → ours). Python's worker runs messages carrying
 * `traceparent`, `x-sc-sent` and stamped signatures like any other: the headers are
 * wire-compatible.
 *
 * Redis: a throw-away server per file; RabbitMQ: a throw-away vhost per file.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { chain } from '../../src/core/canvas.js';
import { createRegistry, type Registry } from '../../src/core/registry.js';
import type { SignatureDict } from '../../src/core/signature.js';
import { defineTask } from '../../src/core/task.js';
import { createPublisher } from '../../src/producer/publisher.js';
import { attemptJsonLine } from '../../src/worker/attempt-log.js';
import type { WorkerEvent } from '../../src/worker/events.js';
import { BROKERS, startTestBroker, type TestBroker } from '../helpers/brokers.js';
import type { CeleryWorker } from '../helpers/celery.js';
import { until } from '../helpers/until.js';
import { startBesidePython, type WorkersBesidePython } from '../helpers/worker.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

class Busy extends Error {
  override name = 'Busy';
}

function ourApp(queue: string): Registry {
  let failures = 0;
  const add = defineTask({ name: 'ts.add', queue }, (_kwargs, ctx) => {
    const [x, y] = ctx.args as [number, number];
    return x + y;
  });
  const wrap = defineTask({ name: 'ts.wrap', queue }, (_kwargs, ctx) => ({ wrapped: ctx.args }));
  const flaky = defineTask(
    { name: 'ts.flaky', queue, retry: { on: [Busy] }, defaultRetryDelay: 0.2 },
    () => {
      failures += 1;
      if (failures === 1) throw new Busy('store busy');
      return 'ok';
    },
  );
  return createRegistry({ tasks: [add, wrap, flaky], queues: [{ name: queue }] });
}

describe.each(BROKERS)('a producer trace through the queue on %s', (kind) => {
  let url: string;
  let testBroker: TestBroker;
  let tsQueue: string;
  let pyQueue: string;
  let registry: Registry;
  let broker: Broker;
  let python: CeleryWorker;
  let events: WorkerEvent[];
  let workers: WorkersBesidePython;

  beforeAll(async () => {
    testBroker = await startTestBroker(kind, 'trace');
    url = testBroker.url;
  });

  afterAll(() => testBroker.stop());

  beforeEach(async () => {
    workers = await startBesidePython(kind, url, ourApp, 'trace');
    ({ tsQueue, pyQueue, registry, broker, python, events } = workers);
  });

  afterEach(() => workers.stop());

  /** Our worker's log lines so far, as `--log-format json` prints them. */
  const logLines = () => events.map((event) => JSON.parse(attemptJsonLine(event, new Date())));
  const publisher = () =>
    createPublisher(broker, { registry, traceContext: () => ({ traceparent: TRACEPARENT }) });

  it('logs the trace on the first attempt and on its retry', async () => {
    // Act
    const id = await publisher().sendTask('ts.flaky');

    // Assess
    await until(() => events.length >= 2, 30_000, 'the attempt and its retry');
    expect(logLines()).toEqual([
      expect.objectContaining({ id, outcome: 'retry', retries: 0, trace_id: TRACE_ID }),
      expect.objectContaining({ id, outcome: 'succeeded', retries: 1, trace_id: TRACE_ID }),
    ]);
  });

  it("keeps the trace through a Python worker's retry", async () => {
    // Act
    await publisher().sendTask('wf.flaky', { args: [5], queue: pyQueue });

    // Assess: Celery's retry() re-sends the nested `headers` copy we write (Context.headers).
    await until(() => python.runs().length >= 2, 30_000, 'the Python run and its retry');
    expect(python.runs().map((run) => [run.retries, run.kwargs])).toEqual([
      [0, { traceparent: TRACEPARENT }],
      [1, { traceparent: TRACEPARENT }],
    ]);
  });

  it('logs the trace in our step that Celery sent after its own (ours → Python → ours)', async () => {
    // Prepare
    const pyStep: SignatureDict = {
      task: 'wf.add',
      args: [100],
      kwargs: {},
      options: { queue: pyQueue },
      subtask_type: null,
      immutable: false,
    };
    const flow = chain(
      {
        task: 'ts.add',
        args: [1, 2],
        kwargs: {},
        options: {},
        subtask_type: null,
        immutable: false,
      },
      pyStep,
      {
        task: 'ts.wrap',
        args: [],
        kwargs: {},
        options: { queue: tsQueue },
        subtask_type: null,
        immutable: false,
      },
    );

    // Act
    await publisher().applyAsync(flow);

    // Assess
    await until(() => events.length >= 2, 30_000, 'both steps of ours');
    const [first, third] = logLines();
    expect(first).toMatchObject({ task: 'ts.add', outcome: 'succeeded', trace_id: TRACE_ID });
    expect(third).toMatchObject({ task: 'ts.wrap', outcome: 'succeeded', trace_id: TRACE_ID });
    const [run] = python.runs();
    expect(run).toMatchObject({ task: 'wf.add', args: [3, 100] });
    // The third step's message is Python's: Celery sent it, with the trace from the signature.
    const delivered = events[1]?.delivery.result;
    expect(delivered?.ok && delivered.message).toMatchObject({
      lang: 'py',
      parentId: run?.id,
      extraHeaders: expect.objectContaining({ traceparent: TRACEPARENT }),
    });
    expect(delivered?.ok && delivered.message.args).toEqual([103]);
  });
});
