/**
 * Capturing what Powertools Logger and Metrics write (they write to `process.stdout` and
 * `process.stderr` through a `Console` of their own), and checking an EMF object against the
 * CloudWatch Embedded Metric Format specification's JSON shape.
 */
import { expect, vi } from 'vitest';

/** Everything written to standard output and error until `restore()`. */
export function captureOutput() {
  let text = '';
  const capture = (chunk: unknown) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    return true;
  };
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  return {
    text: () => text,
    /** Every line that is a JSON object. */
    jsonLines(): Record<string, unknown>[] {
      return text.split('\n').flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          // A line that only looks like JSON (a test runner's output): not ours.
          return [];
        }
      });
    },
    restore() {
      stdout.mockRestore();
      stderr.mockRestore();
    },
  };
}

/** The EMF objects among `lines`: those with an `_aws` member. */
export function emfBlobs(lines: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.filter((line) => '_aws' in line);
}

const EMF_UNITS = new Set([
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
]);

/**
 * Asserts `blob` has the shape the EMF specification requires: `_aws.Timestamp` (epoch ms) and
 * `_aws.CloudWatchMetrics`, each directive with a `Namespace`, `Dimensions` (sets of at most 30
 * names, each a top-level string member) and `Metrics` (at most 100, each named by a top-level
 * number or array of at most 100 numbers, with a valid `Unit`).
 */
export function expectValidEmf(blob: Record<string, unknown>): void {
  const aws = blob._aws as Record<string, unknown>;
  expect(aws).toEqual(expect.any(Object));
  expect(Number.isInteger(aws.Timestamp)).toBe(true);
  const directives = aws.CloudWatchMetrics as Record<string, unknown>[];
  expect(Array.isArray(directives) && directives.length > 0).toBe(true);
  for (const directive of directives) {
    expect(typeof directive.Namespace).toBe('string');
    expect((directive.Namespace as string).length).toBeGreaterThan(0);
    expect((directive.Namespace as string).length).toBeLessThanOrEqual(1024);
    const sets = directive.Dimensions as unknown[][];
    expect(Array.isArray(sets)).toBe(true);
    for (const set of sets) {
      expect(Array.isArray(set) && set.length <= 30).toBe(true);
      for (const name of set) expect(typeof blob[name as string]).toBe('string');
    }
    const metrics = directive.Metrics as Record<string, unknown>[];
    expect(Array.isArray(metrics) && metrics.length > 0 && metrics.length <= 100).toBe(true);
    for (const metric of metrics) {
      expect(typeof metric.Name).toBe('string');
      if (metric.Unit !== undefined) expect(EMF_UNITS.has(metric.Unit as string)).toBe(true);
      const value = blob[metric.Name as string];
      const values = Array.isArray(value) ? value : [value];
      expect(values.length).toBeLessThanOrEqual(100);
      for (const item of values) expect(Number.isFinite(item)).toBe(true);
    }
  }
}
