/**
 * RabbitMQ restarted mid-run: a producer keeps publishing and a long-lived worker (in a process
 * of its own) keeps draining while the node is stopped twice, once cleanly (SIGTERM to its
 * launcher) and once at once (SIGKILL to its processes), and started again with the same ports
 * and database. Nobody restarts the producer or the worker.
 *
 * Every publish that resolved (the broker confirmed it) must run; every publish that failed must
 * have said so with a BrokerError (never a hang, never a silent drop); the worker must reconnect
 * by itself, and RabbitMQ redelivers what it held unacked when the node went down.
 *
 * The restarted node is a second node of the test's own (see `throwaway-rabbitmq.ts`), never the
 * shared one on 5672; the execution log is a throw-away `redis-server`. Prints a one-line JSON
 * summary.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { BrokerError } from '../../src/core/errors.js';
import { createFixtureApp } from '../fixtures-app/registry.js';
import { recordingLogger, startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';
import { readExecutions } from './helpers/execution-figures.js';
import { restartFigures, waitForExecutions } from './helpers/restart-figures.js';
import { startSteadyProducer } from './helpers/steady-producer.js';
import { startThrowawayRabbitMq, type ThrowawayRabbitMq } from './helpers/throwaway-rabbitmq.js';
import { killWorkers, startWorker, type WorkerProcess } from './helpers/worker-process.js';

const PREFETCH = 20;
/** How long the node stays down each time, besides stopping and booting. */
const DOWN_MS = 1000;
/** Steady running before, between and after the restarts. */
const STEADY_MS = 3000;
/** The worker backs off up to 5 s between failed receives; the producer reconnects on its next call. */
const RECONNECT_WITHIN_MS = 10_000;

let node: ThrowawayRabbitMq | undefined;
let recorderServer: ThrowawayRedis | undefined;
let recorder: Redis | undefined;
let producerBroker: Broker | undefined;
let inspector: Broker | undefined;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  node = await startThrowawayRabbitMq();
  recorderServer = await startThrowawayRedis();
  recorder = new Redis(recorderServer.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await killWorkers(workers);
  await producerBroker?.close();
  await inspector?.close();
  await recorder?.quit();
  await recorderServer?.stop();
  await node?.remove();
});

/** One restart: when the node went down and when it accepted connections again. */
interface Outage {
  readonly how: 'SIGTERM' | 'SIGKILL';
  readonly downAt: number;
  readonly upAt: number;
}

describe('a RabbitMQ node restarted twice under a producer and a long-lived worker', () => {
  it('loses no confirmed task; failed publishes say BrokerError; the worker goes on by itself', async ({
    annotate,
  }) => {
    // Prepare
    const rabbit = node as ThrowawayRabbitMq;
    const log = recorder as Redis;
    const queue = `sc-restart-${randomUUID()}`;
    const recordKey = `sc-restart-runs:${queue}`;
    const { registry, doWork } = createFixtureApp({ queue, record: () => undefined });
    const producerLogger = recordingLogger();
    producerBroker = createBroker(
      { kind: 'rabbitmq', url: rabbit.url, connectTimeoutMs: 1000 },
      { queues: registry.queues, logger: producerLogger },
    );
    const producing = producerBroker;
    const worker = await startWorker(
      {
        brokerUrl: rabbit.url,
        queue,
        recordUrl: (recorderServer as ThrowawayRedis).url,
        recordKey,
        prefetch: PREFETCH,
      },
      workers,
    );
    const restart = async (how: Outage['how']): Promise<Outage> => {
      const downAt = Date.now();
      await rabbit.stop(how);
      await sleep(DOWN_MS);
      await rabbit.start();
      return { how, downAt, upAt: Date.now() };
    };

    // Act
    const producer = startSteadyProducer({
      publish: (messages) => producing.publish(messages),
      message: (index) => doWork.createMessage({ args: [index], kwargs: { sleep_ms: index % 3 } }),
      batchSizes: [1, 3, 1, 5],
      pauseMs: 2,
      pauseAfterFailureMs: 20,
      maxMessages: 100_000,
      concurrency: 4,
    });
    await sleep(STEADY_MS);
    const outages = [await restart('SIGTERM')];
    await sleep(STEADY_MS);
    outages.push(await restart('SIGKILL'));
    await sleep(RECONNECT_WITHIN_MS);
    const attempts = await producer.stop();
    const published = attempts.filter((attempt) => attempt.error === null);
    await waitForExecutions(
      log,
      recordKey,
      published.flatMap((attempt) => attempt.ids),
      worker,
    );
    const stillRunning = !worker.exited;
    await worker.stop('SIGTERM');

    // Assess
    const executions = await readExecutions(log, recordKey);
    const figures = restartFigures(attempts, executions);
    const summary = {
      scenario: 'broker-restart',
      broker: 'rabbitmq',
      restarts: outages.map((outage) => ({
        how: outage.how,
        outageMs: outage.upAt - outage.downAt,
      })),
      ...figures.counts,
      workerRestarts: workers.length - 1,
      workerWarnings: worker.output.split('\n').filter((line) => line.startsWith('worker: '))
        .length,
    };
    console.log(JSON.stringify(summary));
    await annotate(JSON.stringify(summary));
    // Each restart was felt: publishes failed while the node was down, and only around then.
    for (const outage of outages) {
      const failedDuring = figures.failed.filter(
        (attempt) => attempt.endedAt >= outage.downAt && attempt.startedAt <= outage.upAt,
      );
      expect(failedDuring.length, `${outage.how} restart`).toBeGreaterThan(0);
    }
    for (const attempt of figures.failed) {
      const near = outages.some(
        (outage) =>
          attempt.endedAt >= outage.downAt &&
          attempt.startedAt <= outage.upAt + RECONNECT_WITHIN_MS,
      );
      expect(near, `failed at ${attempt.startedAt} outside the outages`).toBe(true);
    }
    // Every failure said BrokerError (a hang would say PublishHungError).
    for (const attempt of figures.failed) expect(attempt.error).toBeInstanceOf(BrokerError);
    // Nothing confirmed was lost; nothing ran that was not published.
    expect(figures.lostIds).toEqual([]);
    expect(figures.strangers).toEqual([]);
    // Published after the last restart and run: the producer and the worker went on by themselves.
    const lastUp = Math.max(...outages.map((outage) => outage.upAt));
    expect(published.filter((attempt) => attempt.startedAt > lastUp).length).toBeGreaterThan(0);
    expect(stillRunning).toBe(true);
    expect(workers).toHaveLength(1);
    expect(new Set(executions.map((execution) => execution.pid))).toEqual(new Set([worker.pid]));
    expect(worker.output).toMatch(/worker: RabbitMQ at .* failed/);
    // Each back-off must let go of its abort listener: a flapping broker must not pile them up.
    expect(worker.output).not.toContain('MaxListenersExceededWarning');
    expect(worker.exitCode).toBe(0);
    // Nothing is left in the queue or its dead-letter queue.
    inspector = createBroker({ kind: 'rabbitmq', url: rabbit.url }, { queues: registry.queues });
    expect(await inspector.stats(queue)).toMatchObject({ ready: 0, deadLettered: 0 });
  });
});
