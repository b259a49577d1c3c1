/**
 * Dead-letter reasons are read by people and land in logs: whatever is wrong with a message, the
 * reason describes it without repeating what the message carries, and so does its log line.
 */
import { describe, expect, it } from 'vitest';
import { decodeRedisMessage } from '../../../src/core/redis-codec.js';
import { attemptJsonLine } from '../../../src/worker/attempt-log.js';
import { expectDecodeFailure } from '../../helpers/decode.js';
import { PYTHON_EMBED_JSON, pythonHeaders, redisEnvelope } from '../../helpers/wire.js';

const SECRET = 'sk_live_0123456789abcdefSECRET';

describe('decode failures never repeat a message’s content', () => {
  it.each([
    ['args that are not an array', `[{"token": "${SECRET}"}, {}, ${PYTHON_EMBED_JSON}]`, {}],
    ['kwargs that are not an object', `[[], ["${SECRET}"], ${PYTHON_EMBED_JSON}]`, {}],
    ['an embed that is not an object', `[[], {}, "${SECRET}"]`, {}],
    ['a body cut short', `[["${SECRET}"], {"password": "${SECRET}"`, {}],
    [
      'a kombu uuid that is not one',
      `[[{"__type__": "uuid", "__value__": "${SECRET}"}], {}, null]`,
      {},
    ],
    ['a long non-string argsrepr', `[[], {}, ${PYTHON_EMBED_JSON}]`, { argsrepr: [SECRET] }],
    [
      'a long string where a time belongs',
      `[[], {}, ${PYTHON_EMBED_JSON}]`,
      { eta: `${SECRET}${SECRET}` },
    ],
    ['a timelimit holding a secret', `[[], {}, ${PYTHON_EMBED_JSON}]`, { timelimit: [SECRET] }],
  ])('for %s', (_, body, headers) => {
    const failure = expectDecodeFailure(
      decodeRedisMessage(redisEnvelope({ body, headers: pythonHeaders(headers) })),
    );

    expect(failure.error.message).not.toContain(SECRET);
    expect(failure.error.message).not.toContain('sk_live');
    // Nor does the worker's log line of the message (`--log-format json`, the task function's).
    const outcome = { kind: 'invalid', detail: failure.error.message } as const;
    const line = attemptJsonLine(
      { queue: 'q', delivery: { result: failure }, outcome },
      new Date(),
    );
    expect(line).toContain('"outcome":"invalid"');
    expect(line).not.toContain('sk_live');
  });
});
