/**
 * Poison input on both brokers (issue #8): the table of malformed and hostile messages in
 * `helpers/poison-cases.ts`, pushed raw the way foreign producers would and mixed into a stream of
 * good messages, consumed by the real worker loop (`runLocalWorker`). Every bad message must be
 * dead-lettered with its precise reason, a far-future eta parked, every good message run exactly
 * once, the loop never fail, and no dead-letter reason repeat an argument value.
 *
 * Redis: database 3 of 127.0.0.1:6379, a queue of its own; `redis-cluster-3`: a three-master
 * Redis Cluster of its own (keys under `{celery}:`). RabbitMQ: a vhost of its own. The kinds run
 * as `BROKERS` lists them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { QueueStats } from '../../src/brokers/broker.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { HARNESSES } from '../helpers/brokers.js';
import { recordingLogger } from '../helpers/redis.js';
import { POISON_TASK, SECRET } from './helpers/poison-cases.js';
import {
  buildStream,
  type FoundDeadLetter,
  openPoisonBench,
  POISON_BROKER_KINDS,
  type PoisonBench,
  type PoisonBrokerKind,
  type StreamItem,
} from './helpers/poison-harness.js';

/** The brokers of `BROKERS` the poison stream runs on. */
const KINDS = HARNESSES.filter((kind): kind is PoisonBrokerKind =>
  (POISON_BROKER_KINDS as readonly string[]).includes(kind),
);

/** Good messages the bad ones are mixed into. */
const GOOD_COUNT = 30;
/** Longest the stream may take to drain. */
const DRAIN_TIMEOUT_MS = 60_000;

/** What one broker's run came to. */
interface Observed {
  readonly stream: readonly StreamItem[];
  readonly runs: readonly string[];
  readonly prototypes: readonly boolean[];
  readonly deadLetters: readonly FoundDeadLetter[];
  readonly stats: QueueStats;
  readonly workerError: unknown;
  readonly workerWarnings: readonly string[];
  readonly brokerWarnings: readonly string[];
}

const summary: Record<string, Record<string, number>> = {};

afterAll(() => {
  // One line for the README.
  console.log(`poison summary ${JSON.stringify(summary)}`);
});

describe.each(KINDS)('poison input on %s', (kind: PoisonBrokerKind) => {
  let bench: PoisonBench;
  let observed: Observed;

  const dead = () => observed.stream.filter((item) => item.expect.kind === 'dead');
  const shouldRun = () =>
    observed.stream.filter((item) => item.expect.kind === 'good' || item.expect.kind === 'runs');
  const parked = () => observed.stream.filter((item) => item.expect.kind === 'parked');
  const deadLettersOf = (item: StreamItem) =>
    observed.deadLetters.filter((found) => found.marker === item.ctx.marker);

  beforeAll(async () => {
    bench = await openPoisonBench(kind);
    const runs: string[] = [];
    const prototypes: boolean[] = [];
    const work = defineTask(
      { name: POISON_TASK, queue: bench.queue, kwargs: z.object({ n: z.number() }) },
      (kwargs, ctx) => {
        runs.push(ctx.id);
        prototypes.push(Object.getPrototypeOf(kwargs) === Object.prototype);
      },
    );
    const registry = createRegistry({ tasks: [work], queues: [{ name: bench.queue }] });
    const stream = buildStream(kind, bench.queue, GOOD_COUNT);
    await bench.publish(stream);
    const expectedDead = stream.filter((item) => item.expect.kind === 'dead').length;
    const expectedRuns = stream.filter(
      (item) => item.expect.kind === 'good' || item.expect.kind === 'runs',
    ).length;

    const controller = new AbortController();
    const logger = recordingLogger();
    let workerError: unknown = null;
    const worker = runLocalWorker(bench.broker, registry, {
      queues: [bench.queue],
      concurrency: 10,
      waitMs: 250,
      signal: controller.signal,
      logger,
    }).catch((error: unknown) => {
      workerError = error;
    });
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    let stats = await bench.broker.stats(bench.queue);
    while (
      Date.now() < deadline &&
      !(stats.deadLettered >= expectedDead && stats.delayed >= 1 && runs.length >= expectedRuns)
    ) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      stats = await bench.broker.stats(bench.queue);
    }
    // A little longer, so a message run twice would show up before the loop stops.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    controller.abort();
    await worker;
    stats = await bench.broker.stats(bench.queue);
    const deadLetters = await bench.deadLetters(stream.map((item) => item.ctx.marker));
    observed = {
      stream,
      runs,
      prototypes,
      deadLetters,
      stats,
      workerError,
      workerWarnings: logger.warnings,
      brokerWarnings: bench.brokerWarnings,
    };
    summary[kind] = {
      badInputs: expectedDead + stream.filter((item) => item.expect.kind === 'parked').length,
      deadLettered: deadLetters.length,
      parked: stats.delayed,
      secretPlanted: stream.filter((item) => item.expect.kind === 'dead' && item.carriesSecret)
        .length,
      goodRun: new Set(runs).size,
      hostileButValidRun: stream.filter(
        (item) => item.expect.kind === 'runs' && runs.includes(item.ctx.id),
      ).length,
    };
  });

  afterAll(async () => {
    await bench?.cleanup();
  });

  it('tries at least 30 bad inputs', () => {
    expect(dead().length).toBeGreaterThanOrEqual(30);
  });

  it('runs every good and every odd-but-valid message exactly once', () => {
    // Assess
    const counts = new Map<string, number>();
    for (const id of observed.runs) counts.set(id, (counts.get(id) ?? 0) + 1);
    const wrong = shouldRun()
      .filter((item) => counts.get(item.ctx.id) !== 1)
      .map((item) => `${item.name}: ran ${counts.get(item.ctx.id) ?? 0} times`);
    expect(wrong).toEqual([]);
    expect(observed.runs).toHaveLength(shouldRun().length);
  });

  it('dead-letters every bad message once, with its reason and a precise detail', () => {
    // Assess
    const wrong = dead().flatMap((item) => {
      if (item.expect.kind !== 'dead') return [];
      const found = deadLettersOf(item);
      if (found.length !== 1) return [`${item.name}: dead-lettered ${found.length} times`];
      const { reason, detail } = (found[0] as FoundDeadLetter).entry;
      const ok = reason === item.expect.reason && detail.includes(item.expect.detail);
      return ok ? [] : [`${item.name}: ${reason} "${detail.slice(0, 300)}"`];
    });
    expect(wrong).toEqual([]);
    expect(observed.deadLetters.filter((found) => found.marker === null)).toEqual([]);
    expect(observed.deadLetters).toHaveLength(dead().length);
    const ran = new Set(observed.runs);
    expect(dead().filter((item) => ran.has(item.ctx.id))).toEqual([]);
  });

  it('parks a message whose eta is far ahead: not run, not dead, waiting in delay storage', () => {
    // Assess
    const [farFuture] = parked();
    expect(farFuture).toBeDefined();
    expect(observed.runs).not.toContain(farFuture?.ctx.id);
    expect(farFuture && deadLettersOf(farFuture)).toEqual([]);
    expect(observed.stats.delayed).toBe(parked().length);
  });

  it('keeps the worker loop running to the end, with nothing left held or queued', () => {
    // Assess
    expect(observed.workerError).toBeNull();
    expect(observed.workerWarnings).toEqual([]);
    // Redis says which envelopes it could not even hold; nothing else may have gone wrong.
    expect(
      observed.brokerWarnings.filter((warning) => !/^dead-lettered a message from /.test(warning)),
    ).toEqual([]);
    expect(observed.stats).toMatchObject({ ready: 0, unacked: 0 });
  });

  it('lets no key of the hostile kwargs reach a prototype', () => {
    // Assess
    expect(observed.prototypes.every(Boolean)).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('never repeats an argument value in a dead-letter reason or a warning', () => {
    // Assess
    expect(dead().filter((item) => item.carriesSecret).length).toBeGreaterThanOrEqual(30);
    expect(observed.brokerWarnings.filter((warning) => warning.includes(SECRET))).toEqual([]);
    const echoes = observed.deadLetters
      .filter(({ entry }) =>
        [entry.detail, entry.errorMessage, entry.errorType].some((text) => text?.includes(SECRET)),
      )
      .map(
        ({ marker }) =>
          observed.stream.find((item) => item.ctx.marker === marker)?.name ?? String(marker),
      );
    expect(echoes).toEqual([]);
  });
});
