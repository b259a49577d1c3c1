/**
 * At-least-once with late settlement, on RabbitMQ: 10 000 tasks; the long-lived worker (in a
 * process of its own) is killed with SIGKILL at 5 random moments and a fresh one is started each
 * time. A message is acked only after its task ran; the kill closes the worker's connection and
 * RabbitMQ requeues at once, flagged redelivered, everything the channel held unacked, which
 * the prefetch bounds.
 *
 * Every task must run at least once; a killed worker's tasks may run again only up to its
 * prefetch, each repeat flagged redelivered.
 *
 * The broker is the shared RabbitMQ, in a vhost of the test's own; the execution log is a
 * throw-away `redis-server`. Prints a one-line JSON summary; `SC_RELIABILITY_SEED=<seed>` replays
 * a run's kill moments.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { createFixtureApp } from '../fixtures-app/registry.js';
import { createTestVhost, listQueues, type TestVhost } from '../helpers/rabbitmq.js';
import { seededRandom } from '../helpers/random.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/redis.js';
import { figuresOf, readExecutions, runSeed } from './helpers/execution-figures.js';
import { runWithKills } from './helpers/kill-loop.js';
import { killWorkers, type WorkerProcess } from './helpers/worker-process.js';

const TASKS = 10_000;
const KILLS = 5;
const CONCURRENCY = 10;
/** Unacked messages one worker's channel may hold: a batch running and the next one buffered. */
const PREFETCH = 20;

let vhost: TestVhost | undefined;
let recorderServer: ThrowawayRedis | undefined;
let recorder: Redis | undefined;
let broker: Broker | undefined;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  vhost = await createTestVhost();
  recorderServer = await startThrowawayRedis();
  recorder = new Redis(recorderServer.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await killWorkers(workers);
  await broker?.close();
  await recorder?.quit();
  await recorderServer?.stop();
  await vhost?.remove();
});

describe('a long-lived worker on RabbitMQ, killed with SIGKILL at 5 random moments', () => {
  it('runs each of 10 000 tasks at least once; a kill repeats at most a prefetch of them, flagged redelivered', async ({
    annotate,
  }) => {
    // Prepare
    const { url, name } = vhost as TestVhost;
    const log = recorder as Redis;
    const seed = runSeed();
    const queue = `sc-alo-${randomUUID()}`;
    const recordKey = `sc-alo-runs:${queue}`;
    const { registry, doWork } = createFixtureApp({ queue, record: () => undefined });
    broker = createBroker({ kind: 'rabbitmq', url }, { queues: registry.queues });
    // Runs of 0 to 4 ms: a batch of 10 is partly run, partly waiting, when a kill lands.
    const messages = Array.from({ length: TASKS }, (_, index) =>
      doWork.createMessage({ args: [index], kwargs: { sleep_ms: index % 5 } }),
    );
    for (let start = 0; start < TASKS; start += 500) {
      await broker.publish(messages.slice(start, start + 500));
    }
    const startedAt = Date.now();

    // Act
    const { kills, last } = await runWithKills({
      worker: {
        brokerUrl: url,
        queue,
        recordUrl: (recorderServer as ThrowawayRedis).url,
        recordKey,
        prefetch: PREFETCH,
        concurrency: CONCURRENCY,
      },
      recorder: log,
      tasks: TASKS,
      kills: KILLS,
      random: seededRandom(seed),
      started: workers,
      // The broker requeued the dead channel's messages the moment the connection closed.
      heldAfterKill: async () => null,
    });
    const seconds = (Date.now() - startedAt) / 1000;

    // Assess
    const executions = await readExecutions(log, recordKey);
    const figures = figuresOf(
      messages.map((message) => message.id),
      executions,
    );
    // A kill's repeats: tasks the killed worker ran that a later worker ran again.
    const repeatsOfKill = kills.map((kill, index) => {
      const later = new Set(workers.slice(index + 1).map((worker) => worker.pid));
      const ranAgain = new Set(
        executions.filter((execution) => later.has(execution.pid)).map(({ id }) => id),
      );
      return new Set(
        executions
          .filter((execution) => execution.pid === kill.pid && ranAgain.has(execution.id))
          .map(({ id }) => id),
      ).size;
    });
    const summary = {
      scenario: 'at-least-once',
      broker: 'rabbitmq',
      tasksSent: figures.sent,
      kills: kills.length,
      executed: figures.executed,
      unique: figures.unique,
      duplicates: figures.duplicates,
      lost: figures.lost,
      repeatsOfKills: repeatsOfKill,
      inFlightBound: KILLS * PREFETCH,
      redeliveredExecutions: executions.filter((execution) => execution.redelivered).length,
      maxRunsOfOneTask: figures.maxRuns,
      seed,
      seconds,
    };
    console.log(JSON.stringify(summary));
    await annotate(JSON.stringify(summary));
    // Every task ran; nothing else did.
    expect(figures.strangers).toEqual([]);
    expect(figures.lost).toBe(0);
    expect(figures.unique).toBe(TASKS);
    // The kills landed mid-run: every killed worker had run tasks, and what it held came back.
    expect(kills).toHaveLength(KILLS);
    for (const kill of kills) {
      expect(executions.some((execution) => execution.pid === kill.pid)).toBe(true);
    }
    expect(summary.redeliveredExecutions).toBeGreaterThan(0);
    // Repeats: at most what one channel may hold unacked per kill, each flagged redelivered.
    for (const repeats of repeatsOfKill) expect(repeats).toBeLessThanOrEqual(PREFETCH);
    expect(figures.duplicates).toBeLessThanOrEqual(summary.inFlightBound);
    expect(figures.unflaggedRepeats).toEqual([]);
    // The last worker stopped cleanly; the queue is empty, nothing held, nothing dead-lettered.
    expect(last.exitCode).toBe(0);
    const listed = (await listQueues(name)).find((entry) => entry.name === queue);
    expect(listed).toMatchObject({ messages_ready: 0, messages_unacknowledged: 0 });
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, deadLettered: 0 });
  });
});
