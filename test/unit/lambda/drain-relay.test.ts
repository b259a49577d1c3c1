import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { memoryOnceStore, type OnceStore } from '../../../src/core/once-store.js';
import {
  createDrainRelay,
  type DrainRelayOptions,
  type RelayStop,
  relayTickKey,
  scheduledTick,
} from '../../../src/lambda/drain-relay.js';
import { seededRandom } from '../../helpers/random.js';

const MINUTE = 60_000;
/** A tick of the poller's schedule: 2026-12-05T00:00:00Z. */
const T0 = Date.UTC(2026, 11, 5);
/** The poller's timeout (900 s) minus stopTakingAtMs (60 s). */
const HARD_STOP_AFTER_MS = 840_000;

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** A relay of the `poller` relay on `store` for the tick at `tick`, hard-stopping at `hardStopAt`. */
function relayAt(
  store: OnceStore,
  tick: number,
  overrides: Partial<DrainRelayOptions> & { hardStopAt?: number } = {},
) {
  const hardStopAt = overrides.hardStopAt ?? Date.now() + HARD_STOP_AFTER_MS;
  return createDrainRelay({
    store,
    name: 'poller',
    tick: new Date(tick),
    hardStop: () => Date.now() >= hardStopAt,
    ...overrides,
  });
}

describe('scheduledTick', () => {
  it.each([
    ['the event time', { time: '2026-12-05T01:23:00Z' }, MINUTE, '2026-12-05T01:23:00.000Z'],
    [
      'the event time rounded down',
      { time: '2026-12-05T01:23:06Z' },
      MINUTE,
      '2026-12-05T01:23:00.000Z',
    ],
    ['a 5-minute slot', { time: '2026-12-05T01:23:06Z' }, 5 * MINUTE, '2026-12-05T01:20:00.000Z'],
    ['now without a time', {}, MINUTE, '2026-12-05T00:00:00.000Z'],
    ['now for no event', undefined, MINUTE, '2026-12-05T00:00:00.000Z'],
    ['now for a time that is no date', { time: 'soon' }, MINUTE, '2026-12-05T00:00:00.000Z'],
  ])('serves %s', (_, event, interval, expected) => {
    // Act
    const tick = scheduledTick(event, interval, T0 + 42_000);

    // Assess
    expect(tick.toISOString()).toBe(expected);
  });
});

describe('createDrainRelay', () => {
  it('hands over one to two seconds after the next tick’s poller announces itself', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const first = relayAt(store, T0);
    await first.start();
    await vi.advanceTimersByTimeAsync(MINUTE + 5_000);
    const second = relayAt(store, T0 + MINUTE);

    // Act
    const announced = await second.start();
    const atOnce = first.keepTaking();
    // Seen at the next look (within 1 s), then 1 s of overlap while the successor connects.
    await vi.advanceTimersByTimeAsync(1_500);
    const overlapping = first.keepTaking();
    await vi.advanceTimersByTimeAsync(600);

    // Assess
    expect(announced).toBe(true);
    expect([atOnce, overlapping]).toEqual([true, true]);
    expect(first.keepTaking()).toBe(false);
    expect(first.stoppedBecause()).toBe('handed over');
    expect(second.keepTaking()).toBe(true);
    second.stop();
  });

  it('keeps taking while no later tick has a poller, however long', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const relay = relayAt(store, T0);
    await relay.start();

    // Act
    await vi.advanceTimersByTimeAsync(10 * MINUTE);

    // Assess
    expect(relay.keepTaking()).toBe(true);
    relay.stop();
  });

  it('finds a successor one tick further on when a tick was lost', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const first = relayAt(store, T0);
    await first.start();
    await vi.advanceTimersByTimeAsync(2 * MINUTE + 40_000);

    // Act
    await relayAt(store, T0 + 2 * MINUTE).start();
    await vi.advanceTimersByTimeAsync(2_100);

    // Assess
    expect(first.keepTaking()).toBe(false);
  });

  it('ignores pollers of its own or earlier ticks, and of other relays', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const relay = relayAt(store, T0 + MINUTE);
    await store.claim(relayTickKey('poller', T0), 240);
    await vi.advanceTimersByTimeAsync(2 * MINUTE);
    await relay.start();

    // Act
    await store.claim(relayTickKey('other-poller', T0 + 2 * MINUTE), 240);
    await vi.advanceTimersByTimeAsync(30_000);

    // Assess
    expect(relay.keepTaking()).toBe(true);
    relay.stop();
  });

  it('stops at its hard stop when no successor comes, and for good', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const relay = relayAt(store, T0, { hardStopAt: T0 + HARD_STOP_AFTER_MS });
    await relay.start();
    await vi.advanceTimersByTimeAsync(HARD_STOP_AFTER_MS - 1);
    const before = relay.keepTaking();

    // Act
    await vi.advanceTimersByTimeAsync(1);

    // Assess
    expect(before).toBe(true);
    expect(relay.keepTaking()).toBe(false);
    expect(relay.stoppedBecause()).toBe('hard stop');
    await relayAt(store, T0 + 15 * MINUTE).start();
    expect(relay.keepTaking()).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('drains nothing for a tick another poller serves already', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const first = relayAt(store, T0);
    await first.start();
    await vi.advanceTimersByTimeAsync(30_000);
    const duplicate = relayAt(store, T0);

    // Act
    const announced = await duplicate.start();

    // Assess
    expect(announced).toBe(false);
    expect(duplicate.keepTaking()).toBe(false);
    expect(duplicate.stoppedBecause()).toBe('duplicate tick');
    expect(first.keepTaking()).toBe(true);
    first.stop();
  });

  it('lets a late poller whose successor already runs take for the overlap only', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    await vi.advanceTimersByTimeAsync(MINUTE + 10_000);
    await relayAt(store, T0 + MINUTE).start();
    const late = relayAt(store, T0);

    // Act
    await late.start();
    const atOnce = late.keepTaking();
    await vi.advanceTimersByTimeAsync(1_000);

    // Assess
    expect(atOnce).toBe(true);
    expect(late.keepTaking()).toBe(false);
  });

  it('drains for minDrainMs at least, successor or not', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    await vi.advanceTimersByTimeAsync(MINUTE + 10_000);
    await relayAt(store, T0 + MINUTE).start();
    const late = relayAt(store, T0, { minDrainMs: MINUTE });
    await late.start();

    // Act
    await vi.advanceTimersByTimeAsync(MINUTE - 1);
    const before = late.keepTaking();
    await vi.advanceTimersByTimeAsync(1);

    // Assess
    expect(before).toBe(true);
    expect(late.keepTaking()).toBe(false);
  });

  it('leaves no timer behind once stopped, and takes nothing after', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const relay = relayAt(store, T0);
    await relay.start();
    await vi.advanceTimersByTimeAsync(5_500);

    // Act
    relay.stop();
    relay.stop();

    // Assess
    expect(vi.getTimerCount()).toBe(0);
    expect(relay.keepTaking()).toBe(false);
    expect(relay.stoppedBecause()).toBe('stopped');
  });

  it('gives its claim back when stopped while announcing itself', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const relay = relayAt(store, T0);

    // Act
    const started = relay.start();
    relay.stop();

    // Assess
    expect(await started).toBe(false);
    expect(await store.exists(relayTickKey('poller', T0))).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps taking, and says why, while the store cannot be asked', async () => {
    // Prepare
    const store = memoryOnceStore(() => Date.now());
    const warnings: string[] = [];
    const failing: OnceStore = {
      ...store,
      exists: async () => {
        throw new Error('connect ECONNREFUSED');
      },
    };
    // The previous tick's poller: from the start there is a later tick to look for.
    const relay = relayAt(failing, T0 - MINUTE, {
      logger: { warn: (line) => warnings.push(line) },
    });
    await relay.start();

    // Act
    await vi.advanceTimersByTimeAsync(3_500);

    // Assess
    expect(relay.keepTaking()).toBe(true);
    expect(warnings).toHaveLength(4);
    expect(warnings[0]).toBe('poller relay: cannot look for a successor: connect ECONNREFUSED');
    relay.stop();
  });

  it('does not drain when it cannot announce itself', async () => {
    // Prepare
    const failing: OnceStore = {
      ...memoryOnceStore(),
      claim: async () => {
        throw new Error('NOAUTH Authentication required');
      },
    };
    const relay = relayAt(failing, T0);

    // Act
    const started = relay.start();

    // Assess
    await expect(started).rejects.toThrow('NOAUTH');
    expect(relay.keepTaking()).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});

/** What one simulated invocation did. */
interface Invocation {
  readonly tick: number;
  readonly hardStopAt: number;
  announced?: boolean;
  /** When it took its first batch and when keepTaking first said no. */
  from?: number;
  to?: number;
  /** The last time keepTaking said yes. */
  lastYes?: number;
  reason?: RelayStop | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One poller invocation as the worker loop drives it: announce, connect (0–0.5 s), then ask
 * keepTaking before every receive (0.05–1 s apart: a batch, or an idle receive's wait).
 */
async function invoke(store: OnceStore, tick: number, rng: () => number): Promise<Invocation> {
  const invocation: Invocation = { tick, hardStopAt: Date.now() + HARD_STOP_AFTER_MS };
  const relay = relayAt(store, tick, { hardStopAt: invocation.hardStopAt });
  invocation.announced = await relay.start();
  if (invocation.announced) {
    await sleep(rng() * 500);
    invocation.from = Date.now();
    while (relay.keepTaking()) {
      invocation.lastYes = Date.now();
      await sleep(50 + rng() * 950);
    }
    invocation.to = Date.now();
  }
  relay.stop();
  invocation.reason = relay.stoppedBecause();
  return invocation;
}

/** How many invocations take at each moment: [from, count] steps, in time order. */
function takingOverTime(invocations: readonly Invocation[]): [number, number][] {
  const edges = invocations
    .filter((run) => run.from !== undefined && run.to !== undefined && run.to > run.from)
    .flatMap((run): [number, number][] => [
      [run.from as number, 1],
      [run.to as number, -1],
    ])
    // At one instant a stop counts before a start: touching intervals leave no gap.
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const steps: [number, number][] = [];
  let count = 0;
  for (const [at, change] of edges) {
    count += change;
    steps.push([at, count]);
  }
  return steps;
}

describe('the relay over an hour of ticks delivered late, lost and twice', () => {
  it.each([[1], [7], [42], [2026], [31337]])('drains without a pause (seed %i)', async (seed) => {
    // Prepare: a tick a minute for an hour, each delivered 0–50 s late, 10 % lost (never the
    // first), 15 % delivered a second time.
    const rng = seededRandom(seed);
    const store = memoryOnceStore(() => Date.now());
    const runs: Promise<Invocation>[] = [];
    const deliveries = new Map<number, number>();
    for (let minute = 0; minute < 60; minute++) {
      const tick = T0 + minute * MINUTE;
      const copies = minute > 0 && rng() < 0.1 ? 0 : rng() < 0.15 ? 2 : 1;
      deliveries.set(tick, copies);
      for (let copy = 0; copy < copies; copy++) {
        setTimeout(
          () => runs.push(invoke(store, tick, rng)),
          tick - T0 + Math.floor(rng() * 50_000),
        );
      }
    }

    // Act: the hour, then long enough for the last poller to reach its hard stop.
    for (let minute = 0; minute < 76; minute++) await vi.advanceTimersByTimeAsync(MINUTE);
    const invocations = await Promise.all(runs);

    // Assess: every delivery ran to its end and left no timer behind.
    expect(invocations).toHaveLength([...deliveries.values()].reduce((sum, n) => sum + n, 0));
    expect(vi.getTimerCount()).toBe(0);
    // One poller per delivered tick announced itself; its duplicates took nothing.
    for (const [tick, copies] of deliveries) {
      const ofTick = invocations.filter((run) => run.tick === tick);
      expect(ofTick.filter((run) => run.announced)).toHaveLength(copies > 0 ? 1 : 0);
      for (const duplicate of ofTick.filter((run) => !run.announced)) {
        expect(duplicate.from).toBeUndefined();
        expect(duplicate.reason).toBe('duplicate tick');
      }
    }
    // Nobody took past its hard stop.
    for (const run of invocations) {
      expect(run.lastYes ?? 0, `tick ${new Date(run.tick).toISOString()}`).toBeLessThan(
        run.hardStopAt,
      );
    }
    // From the first take to the end of the hour, someone was always taking; at most two at
    // once, and two only for the few seconds of a handover.
    const steps = takingOverTime(invocations);
    const end = T0 + 60 * MINUTE;
    let longestGap = 0;
    let longestPair = 0;
    for (let index = 0; index < steps.length - 1; index++) {
      const [at, count] = steps[index] as [number, number];
      const next = (steps[index + 1] as [number, number])[0];
      if (at >= end) break;
      if (count === 0) longestGap = Math.max(longestGap, Math.min(next, end) - at);
      if (count >= 2) longestPair = Math.max(longestPair, next - at);
      expect(count).toBeLessThanOrEqual(2);
    }
    expect(longestGap).toBeLessThanOrEqual(2_000);
    expect(longestPair).toBeLessThanOrEqual(3_000);
    expect(invocations.filter((run) => run.reason === 'handed over').length).toBeGreaterThan(40);
  });

  it('leaves a gap only when ticks stay away past the running poller’s hard stop', async () => {
    // Prepare: ticks at 0 and 1 min, then none until 20 min.
    const rng = seededRandom(5);
    const store = memoryOnceStore(() => Date.now());
    const runs: Promise<Invocation>[] = [];
    for (const minute of [0, 1, 20]) {
      setTimeout(() => runs.push(invoke(store, T0 + minute * MINUTE, rng)), minute * MINUTE);
    }

    // Act
    for (let minute = 0; minute < 36; minute++) await vi.advanceTimersByTimeAsync(MINUTE);
    const [, second, third] = await Promise.all(runs);

    // Assess: the second poller drained until its hard stop (15 min), the queues then waited
    // for the tick at 20 min.
    expect(second?.reason).toBe('hard stop');
    expect((second?.to ?? 0) - T0).toBeGreaterThanOrEqual(MINUTE + HARD_STOP_AFTER_MS);
    expect((second?.to ?? 0) - T0).toBeLessThan(MINUTE + HARD_STOP_AFTER_MS + 1_000);
    expect(third?.from).toBeGreaterThanOrEqual(T0 + 20 * MINUTE);
  });
});
