import { describe, expect, it } from 'vitest';
import type { CliContext } from '../../../src/cli/context.js';
import { chooseLogFormat } from '../../../src/cli/log-format.js';
import { main } from '../../../src/cli/main.js';
import { withTraceContext } from '../../../src/core/trace-context.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { testContext } from '../../helpers/cli.js';
import { deliveryOf, fakeBroker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('chooseLogFormat', () => {
  it.each([
    ['the flag over everything', 'text', { LOG_FORMAT: 'json' }, false, 'text'],
    ['LOG_FORMAT over the terminal', undefined, { LOG_FORMAT: 'JSON' }, true, 'json'],
    ['text on a terminal', undefined, {}, true, 'text'],
    ['json on a pipe', undefined, {}, false, 'json'],
    ['text when the terminal is unknown', undefined, {}, undefined, 'text'],
    [
      'the terminal when LOG_FORMAT is not a format',
      undefined,
      { LOG_FORMAT: 'yaml' },
      false,
      'json',
    ],
  ] as const)('picks %s', (_, flag, env, tty, expected) => {
    expect(chooseLogFormat(flag, env, tty)).toBe(expected);
  });
});

/** Runs `worker` on two messages (one traced, one dead-lettered) until both are settled. */
async function workerLines(args: readonly string[], stdoutIsTTY?: boolean) {
  const secret = 987654321;
  const ok = withTraceContext(app.add.createMessage({ kwargs: { x: secret, y: 2 } }), {
    traceparent: TRACEPARENT,
  });
  const bad = app.fail.createMessage();
  const broker = fakeBroker({ batches: [[deliveryOf(ok), deliveryOf(bad)]] });
  const base = testContext({ registry: app.registry, broker });
  const stdout: CliContext['stdout'] = (text) => {
    base.stdout(text);
    if (base.out().split('\n').length - 1 === 2) base.shutdown('SIGTERM');
  };
  const context = { ...base, stdout, ...(stdoutIsTTY === undefined ? {} : { stdoutIsTTY }) };
  const code = await main(['worker', ...args], context);
  return { code, out: base.out(), ids: [ok.id, bad.id], secret };
}

describe('worker --log-format', () => {
  it('prints the structured record per attempt as JSON, with the trace and no argument', async () => {
    // Act
    const { code, out, ids, secret } = await workerLines(['--log-format', 'json']);

    // Assess
    expect(code).toBe(0);
    const lines = out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'INFO',
        message: 'task app.add succeeded',
        timestamp: expect.any(String),
        task: 'app.add',
        id: ids[0],
        queue: 'jobs',
        retries: 0,
        outcome: 'succeeded',
        duration_ms: expect.any(Number),
        trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
        parent_span_id: '00f067aa0ba902b7',
      }),
      expect.objectContaining({
        level: 'ERROR',
        id: ids[1],
        outcome: 'dead',
        reason: 'excluded',
        error_type: 'TypeError',
        error_message: 'the payload has no body',
        trace_id: null,
      }),
    ]);
    expect(out).not.toContain(String(secret));
  });

  it('prints JSON by itself when standard output is not a terminal', async () => {
    const { out } = await workerLines([], false);
    expect(
      out
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line).outcome),
    ).toEqual(['succeeded', 'dead']);
  });

  it('prints the human line on a terminal', async () => {
    const { out, ids } = await workerLines([], true);
    expect(out).toContain(`app.add[${ids[0]}]  retries 0/2  succeeded in`);
  });
});
