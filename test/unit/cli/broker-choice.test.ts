import { describe, expect, it } from 'vitest';
import { START_RABBITMQ, START_REDIS, startHint } from '../../../src/cli/broker-choice.js';
import { sleep } from '../../../src/cli/context.js';

describe('startHint', () => {
  it.each([
    ['redis://127.0.0.1:6379/0', 'redis', 'connection refused', START_REDIS],
    [
      'redis://localhost:6390/2',
      'redis',
      'connect ECONNREFUSED',
      START_REDIS.replace('6379', '6390'),
    ],
    ['redis://127.0.0.1/0', 'redis', 'connection refused', START_REDIS],
    ['amqp://guest:guest@127.0.0.1:5672/', 'rabbitmq', 'connection refused', START_RABBITMQ],
    ['redis://cache.internal:6379/0', 'redis', 'connection refused', null],
    ['redis://127.0.0.1:6379/0', 'redis', 'authentication failed', null],
    ['not a url', 'redis', 'connection refused', null],
  ] as const)('%s, %s, %j → %s', (url, kind, reason, hint) => {
    expect(startHint(url, kind, reason)).toBe(hint);
  });
});

describe('sleep', () => {
  it('resolves early when its signal aborts, and at once for an aborted signal', async () => {
    // Prepare
    const stop = new AbortController();
    const started = Date.now();

    // Act
    const waiting = sleep(10_000, stop.signal);
    setTimeout(() => stop.abort(), 10);
    await waiting;
    await sleep(10_000, stop.signal);

    // Assess
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
