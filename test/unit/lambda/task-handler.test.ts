import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidConfigError, UnknownTaskError } from '../../../src/core/errors.js';
import { EMPTY_EMBED } from '../../../src/core/message.js';
import { memoryOnceStore } from '../../../src/core/once-store.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import { type RawDelivery, toRawDelivery } from '../../../src/core/wire.js';
import { createTaskHandler } from '../../../src/lambda/task-handler.js';
import { RetryableError } from '../../helpers/factories.js';
import { fakeContext } from '../../helpers/lambda.js';

const QUEUE = 'q';
const seenRemaining: number[] = [];

const work = defineTask(
  {
    name: 'app.work',
    queue: QUEUE,
    aliases: ['app.old_work'],
    kwargs: z.object({
      mode: z.enum(['ok', 'retry', 'throw', 'throw-string', 'wait-for-abort', 'remaining']),
    }),
    retry: { on: [RetryableError] },
    defaultRetryDelay: 10,
  },
  async ({ mode }, ctx) => {
    switch (mode) {
      case 'retry':
        throw new RetryableError('flaky');
      case 'throw':
        throw new TypeError('a bug');
      case 'throw-string':
        throw 'not even an error';
      case 'wait-for-abort':
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        throw ctx.signal.reason;
      case 'remaining':
        seenRemaining.push(ctx.remainingTimeMs());
        return null;
      default:
        return ctx.id;
    }
  },
);
const hardLimited = defineTask({ name: 'app.hard', queue: QUEUE, timeLimit: 0.05 }, async () => {
  await new Promise((resolve) => setTimeout(resolve, 5_000));
});
const softLimited = defineTask(
  { name: 'app.soft', queue: QUEUE, softTimeLimit: 0.05 },
  async (_, ctx) => {
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    return 'stopped in time';
  },
);
const registry = createRegistry({
  tasks: [work, hardLimited, softLimited],
  queues: [{ name: QUEUE }],
});

type Mode = 'ok' | 'retry' | 'throw' | 'throw-string' | 'wait-for-abort' | 'remaining';
const rawOf = (mode: Mode, extra: Parameters<typeof work.createMessage>[0] = {}): RawDelivery =>
  toRawDelivery(work.createMessage({ kwargs: { mode }, ...extra }));
const idOf = (raw: RawDelivery) => (raw.headers as { id: string }).id;

describe('createTaskHandler', () => {
  it('answers one outcome per message, in the order of the batch', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work');
    const batch = [
      rawOf('retry'),
      rawOf('ok'),
      rawOf('ok', { countdown: 3600 }),
      rawOf('throw'),
      rawOf('ok', { expires: new Date(Date.now() - 1_000) }),
    ];

    // Act
    const { outcomes } = await handler({ messages: batch }, fakeContext());

    // Assess
    expect(outcomes.map((outcome) => outcome.kind)).toEqual([
      'retry',
      'succeeded',
      'not-due',
      'dead',
      'dead',
    ]);
    expect(outcomes[3]).toMatchObject({
      reason: { reason: 'not-retryable', id: idOf(batch[3] as RawDelivery) },
    });
    expect(outcomes[4]).toMatchObject({
      reason: { reason: 'expired', id: idOf(batch[4] as RawDelivery) },
    });
  });

  it('answers plain JSON that survives the trip back to the dispatcher', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work');

    // Act
    const result = await handler({ messages: [rawOf('retry'), rawOf('throw')] }, fakeContext());

    // Assess
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result.outcomes[0]).toMatchObject({
      kind: 'retry',
      errorType: 'RetryableError',
      errorMessage: 'flaky',
    });
  });

  it('runs a message published under one of its aliases', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work');
    const raw = toRawDelivery({
      ...work.createMessage({ kwargs: { mode: 'ok' } }),
      task: 'app.old_work',
    });

    // Act
    const { outcomes } = await handler({ messages: [raw] }, fakeContext());

    // Assess
    expect(outcomes).toEqual([{ kind: 'succeeded', durationMs: expect.any(Number) }]);
  });

  it('dead-letters a message of another task as unknown-task, without running it', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.soft');
    const raw = rawOf('ok');

    // Act
    const { outcomes } = await handler({ messages: [raw] }, fakeContext());

    // Assess
    expect(outcomes).toEqual([
      {
        kind: 'dead',
        reason: {
          reason: 'unknown-task',
          detail: 'message for task app.work reached the function of app.soft',
          task: 'app.work',
          id: idOf(raw),
          retries: 0,
        },
        durationMs: 0,
      },
    ]);
  });

  it.each<[string, Partial<RawDelivery>]>([
    ['a pickle body', { contentType: 'application/x-python-serialize', body: '\x80\x04' }],
    ['a body that is not JSON', { body: '[[], {}' }],
    ['a body that is not [args, kwargs, embed]', { body: '{"args": []}' }],
  ])('dead-letters %s as invalid-message, naming what it could read', async (_, defect) => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work');
    const raw = { ...rawOf('ok'), ...defect };

    // Act
    const { outcomes } = await handler({ messages: [raw] }, fakeContext());

    // Assess
    expect(outcomes).toEqual([
      {
        kind: 'dead',
        reason: {
          reason: 'invalid-message',
          detail: expect.stringMatching(/^invalid message/),
          task: 'app.work',
          id: idOf(raw),
          retries: null,
          errorType: 'InvalidMessageError',
          errorMessage: expect.stringMatching(/^invalid message/),
        },
        durationMs: 0,
      },
    ]);
  });

  it('never lets a throwing task fail its neighbours', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work');
    const batch = [rawOf('ok'), rawOf('throw'), rawOf('throw-string'), rawOf('ok')];

    // Act
    const { outcomes } = await handler({ messages: batch }, fakeContext());

    // Assess
    expect(outcomes.map((outcome) => outcome.kind)).toEqual([
      'succeeded',
      'dead',
      'dead',
      'succeeded',
    ]);
    expect(outcomes[2]).toMatchObject({
      reason: { errorMessage: 'non-error thrown: not even an error' },
    });
  });

  it('dead-letters a task that runs past its hard time limit', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.hard');
    const raw = toRawDelivery(hardLimited.createMessage());

    // Act
    const { outcomes } = await handler({ messages: [raw] }, fakeContext());

    // Assess
    expect(outcomes).toEqual([
      expect.objectContaining({
        kind: 'dead',
        reason: expect.objectContaining({
          reason: 'not-retryable',
          errorType: 'TimeLimitExceeded',
          errorMessage: 'task app.hard exceeded its time limit of 0.05 s',
        }),
      }),
    ]);
  });

  it('tells a task its soft time limit passed through its abort signal', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.soft');

    // Act
    const { outcomes } = await handler(
      { messages: [toRawDelivery(softLimited.createMessage())] },
      fakeContext(),
    );

    // Assess
    expect(outcomes).toEqual([{ kind: 'succeeded', durationMs: expect.any(Number) }]);
  });

  it('ends running tasks with TimeLimitExceeded a safety margin before the Lambda times out', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work', { safetyMarginMs: 1_000 });
    const batch = [rawOf('wait-for-abort'), rawOf('ok')];

    // Act
    const { outcomes } = await handler({ messages: batch }, fakeContext({ remainingMs: 1_300 }));

    // Assess
    expect(outcomes).toEqual([
      expect.objectContaining({
        kind: 'dead',
        reason: expect.objectContaining({
          reason: 'not-retryable',
          errorType: 'TimeLimitExceeded',
          // 0.3 s less the few ms between the Lambda context's reading and the run's start.
          errorMessage: expect.stringMatching(
            /^task app\.work exceeded the function's remaining time of 0\.[23]\d* s$/,
          ),
        }),
      }),
      expect.objectContaining({ kind: 'succeeded' }),
    ]);
  });

  it("gives a task the Lambda's remaining time less the safety margin", async () => {
    // Prepare
    seenRemaining.length = 0;
    const handler = createTaskHandler(registry, 'app.work', { safetyMarginMs: 2_000 });

    // Act
    await handler({ messages: [rawOf('remaining')] }, fakeContext({ remaining: () => 10_000 }));

    // Assess
    expect(seenRemaining).toEqual([8_000]);
  });

  it('leaves no listener behind on the abort signal middy shares across warm invocations', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work');
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);

    // Act
    for (let invocation = 0; invocation < 12; invocation++) {
      await handler({ messages: [rawOf('ok')] }, fakeContext());
    }
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);

    // Assess
    expect(warnings.map((warning) => warning.name)).not.toContain('MaxListenersExceededWarning');
  });

  it('answers an empty batch with no outcomes', async () => {
    // Prepare
    const handler = createTaskHandler(registry, 'app.work');

    // Act
    const result = await handler({ messages: [] }, fakeContext());

    // Assess
    expect(result).toEqual({ outcomes: [] });
  });

  it('refuses to build the function of a task the registry does not know', () => {
    // Act
    const build = () => createTaskHandler(registry, 'app.nope');

    // Assess
    expect(build).toThrow(UnknownTaskError);
  });

  it('refuses to build the function of an atMostOnce or idempotent task without a once store', () => {
    // Prepare
    const once = defineTask({ name: 'app.once', queue: QUEUE, atMostOnce: true }, () => 1);
    const idempotent = defineTask({ name: 'app.idem', queue: QUEUE, idempotent: true }, () => 1);
    const withFlags = createRegistry({ tasks: [once, idempotent], queues: [{ name: QUEUE }] });

    // Act
    const build = (task: string) => () => createTaskHandler(withFlags, task);

    // Assess
    expect(build('app.once')).toThrow(InvalidConfigError);
    expect(build('app.once')).toThrow(/store: an atMostOnce task needs a once store/);
    expect(build('app.idem')).toThrow(/store: an idempotent task needs a once store/);
  });

  it('records an atMostOnce run in the store it is given and skips a repeat', async () => {
    // Prepare
    let runs = 0;
    const once = defineTask({ name: 'app.once', queue: QUEUE, atMostOnce: true }, () => ++runs);
    const withFlags = createRegistry({ tasks: [once], queues: [{ name: QUEUE }] });
    const handler = createTaskHandler(withFlags, 'app.once', { store: memoryOnceStore() });
    const raw = toRawDelivery(once.createMessage());

    // Act
    const first = await handler({ messages: [raw] }, fakeContext());
    const second = await handler({ messages: [raw] }, fakeContext());

    // Assess
    expect(first.outcomes.map((outcome) => outcome.kind)).toEqual(['succeeded']);
    expect(second.outcomes.map((outcome) => outcome.kind)).toEqual(['duplicate']);
    expect(runs).toBe(1);
  });

  it('returns a result only when a workflow continues from it, or results are kept', async () => {
    // Prepare
    const link = {
      task: 'py.cb',
      args: [],
      kwargs: {},
      options: {},
      subtask_type: null,
      immutable: false,
    };
    const plain = work.createMessage({ kwargs: { mode: 'ok' } });
    const linked = {
      ...plain,
      id: 'linked-id',
      embed: { ...EMPTY_EMBED, callbacks: [link] },
      rawBody: null,
    };
    const batch = { messages: [toRawDelivery(plain), toRawDelivery(linked)] };

    // Act
    const lean = await createTaskHandler(registry, 'app.work')(batch, fakeContext());
    const kept = await createTaskHandler(registry, 'app.work', { results: true })(
      batch,
      fakeContext(),
    );

    // Assess
    expect(lean.outcomes.map((outcome) => 'result' in outcome && outcome.result)).toEqual([
      false,
      'linked-id',
    ]);
    expect(kept.outcomes.map((outcome) => 'result' in outcome && outcome.result)).toEqual([
      plain.id,
      'linked-id',
    ]);
  });
});
