/**
 * Tasks whose schemas use `zod/mini` (the smaller bundle). This file imports no classic zod:
 * classic installs English messages on first use, which would hide a mini-only process that
 * reads "Invalid input" everywhere.
 */
import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { InvalidArgumentsError, InvalidConfigError } from '../../../src/core/errors.js';
import { defineTask } from '../../../src/core/task.js';

const saveEvent = defineTask(
  {
    name: 'ingest.save_event',
    queue: 'events',
    kwargs: z.object({ event_id: z.string().check(z.minLength(1)), count: z.optional(z.int()) }),
  },
  ({ event_id }) => event_id,
);

describe('tasks with zod/mini schemas', () => {
  it('parses kwargs, keeping unknown keys for rolling deploys', () => {
    // Act
    const parsed = saveEvent.parseArguments([], { event_id: 'e1', added_later: true });

    // Assess
    expect(parsed).toEqual({ ok: true, kwargs: { event_id: 'e1', added_later: true }, args: [] });
  });

  it('names each bad field with an English reason', () => {
    // Act
    const parsed = saveEvent.parseArguments([], { event_id: '', count: 1.5 });

    // Assess
    expect(parsed.ok).toBe(false);
    const issues = parsed.ok ? [] : parsed.error.issues;
    expect(issues).toEqual([
      { path: 'kwargs.event_id', message: expect.stringMatching(/^Too small: expected string/) },
      { path: 'kwargs.count', message: expect.stringMatching(/^Invalid input: expected int/) },
    ]);
  });

  it('refuses a call with bad kwargs at publish time', () => {
    // Act
    const publish = () => saveEvent.createMessage({ kwargs: { event_id: 7 } as never });

    // Assess
    expect(publish).toThrow(InvalidArgumentsError);
    expect(publish).toThrow(/kwargs\.event_id: Invalid input: expected string, received number/);
  });

  it('explains bad task options in English too', () => {
    // Act
    const define = () => defineTask({ name: 'x', maxRetries: -1, queue: '' }, () => undefined);

    // Assess
    expect(define).toThrow(InvalidConfigError);
    expect(define).toThrow(/maxRetries: Too small: expected number to be >=0/);
    expect(define).toThrow(/queue: Too small: expected string to have >=1 characters/);
  });

  it('refuses a kwargs schema that is not an object schema', () => {
    // Act
    const define = () => defineTask({ name: 'x', kwargs: z.string() as never }, () => undefined);

    // Assess
    expect(define).toThrow(/kwargs: expected a z\.object\(\) schema/);
  });
});
