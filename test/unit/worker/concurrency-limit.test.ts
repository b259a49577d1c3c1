import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from '../../../src/worker/concurrency-limit.js';

describe('ConcurrencyLimit', () => {
  it('halves to what runs on a throttle, and pauses 100 ms, 200 ms, 400 ms in a row', () => {
    // Prepare
    const limit = new ConcurrencyLimit(16);

    // Act
    const pauses = [limit.throttled(15, 1000), limit.throttled(3, 1000), limit.throttled(0, 1000)];

    // Assess
    expect(pauses).toEqual([100, 200, 400]);
    expect(limit.limit).toBe(1);
    expect(limit.pausedUntil).toBe(1400);
  });

  it('widens by one per execution that passed, never above the slots, and resets the pauses', () => {
    // Prepare
    const limit = new ConcurrencyLimit(4);
    limit.throttled(3, 0);
    limit.throttled(1, 0);

    // Act
    const widths = [1, 2, 3, 4].map(() => {
      limit.passed();
      return limit.limit;
    });

    // Assess
    expect(widths).toEqual([2, 3, 4, 4]);
    expect(limit.throttled(0, 0)).toBe(100);
  });

  it('never pauses longer than 5 s', () => {
    const limit = new ConcurrencyLimit(1);
    const pauses = Array.from({ length: 10 }, () => limit.throttled(0, 0));
    expect(Math.max(...pauses)).toBe(5_000);
  });
});
