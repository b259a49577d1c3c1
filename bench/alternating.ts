/**
 * Figures measured side by side: a base case and the cases compared with it (events on, a Redis
 * Cluster instead of one node) take turns run by run, so that load from elsewhere on the machine
 * hits them alike and their ratio holds even when the rates themselves wander.
 */
import { type Figure, measure, RUNS } from './harness.js';

/** A case that may take turns with another. */
export interface Alternating {
  readonly id: string;
  /** The base case whose runs this one's alternate with; its goal is a ratio to that case. */
  readonly alternatesWith?: string;
}

/**
 * The cases `filter` selects (those whose id contains it; all without one), as groups that run
 * together: a base case first, then the cases that alternate with it. A selected base brings all
 * of its followers, and a selected follower brings its base, since its ratio needs it.
 */
export function alternationGroups<T extends Alternating>(
  cases: readonly T[],
  filter: string | undefined,
): T[][] {
  const chosen = (item: T) => !filter || item.id.includes(filter);
  const groups: T[][] = [];
  for (const base of cases) {
    if (base.alternatesWith) continue;
    const followers = cases.filter(
      (other) => other.alternatesWith === base.id && (chosen(base) || chosen(other)),
    );
    if (chosen(base) || followers.length > 0) groups.push([base, ...followers]);
  }
  return groups;
}

/**
 * Measures the figures of a group run by run, taking turns: run i of each before run i + 1 of
 * any. One promise per figure: a figure whose run fails is rejected with that error and sits out
 * the later runs, while the others go on (a cluster that does not start costs no base figure).
 *
 * @param sample - run `run` of figure `index` of `figures`; returns its value
 */
export function measureAlternating(
  figures: readonly Omit<Figure, 'value' | 'samples'>[],
  sample: (index: number, run: number) => Promise<number>,
): Promise<Figure>[] {
  const samples = figures.map((): number[] => []);
  const failures = new Map<number, unknown>();
  const all = (async () => {
    for (let run = 0; run < RUNS; run++) {
      for (const [index, list] of samples.entries()) {
        if (failures.has(index)) continue;
        try {
          list.push(await sample(index, run));
        } catch (error) {
          failures.set(index, error);
        }
      }
    }
  })();
  const results = figures.map(async (figure, index) => {
    await all;
    if (failures.has(index)) throw failures.get(index);
    return measure(figure, async (run) => samples[index]?.[run] ?? Number.NaN);
  });
  // The caller awaits them one after the other; until it reaches one, a failure is not unhandled.
  for (const result of results) result.catch(() => undefined);
  return results;
}
