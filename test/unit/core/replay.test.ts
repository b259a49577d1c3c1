import { describe, expect, it } from 'vitest';
import { createTaskMessage } from '../../../src/core/message.js';
import { replayMessage } from '../../../src/core/replay.js';
import { SENT_HEADER } from '../../../src/core/trace-context.js';

describe('replayMessage', () => {
  it('runs the same task now: retries 0, no eta or expiry, sent at the replay', () => {
    const dead = {
      ...createTaskMessage({ task: 'orders.charge', queue: 'orders', args: ['o-1'] }),
      retries: 3,
      eta: new Date('2026-12-05T09:00:00Z'),
      expires: new Date('2026-12-05T10:00:00Z'),
      redelivered: true,
      extraHeaders: {
        [SENT_HEADER]: '2026-12-01T00:00:00.000Z',
        'x-sc-invoke-failures': 2,
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
    };

    const replayed = replayMessage(dead, new Date('2026-12-05T12:00:00Z'));

    expect(replayed).toMatchObject({
      id: dead.id,
      args: ['o-1'],
      retries: 0,
      eta: null,
      expires: null,
      redelivered: false,
    });
    expect(replayed.extraHeaders).toEqual({
      [SENT_HEADER]: '2026-12-05T12:00:00.000Z',
      traceparent: dead.extraHeaders.traceparent,
    });
  });
});
