import { describe, expect, it } from 'vitest';
import { formatCeleryTime, parseCeleryTime } from '../../../src/core/time.js';

describe('parseCeleryTime', () => {
  it.each([
    ['Celery header form', '2030-01-02T03:04:05+00:00', '2030-01-02T03:04:05.000Z'],
    [
      'microseconds, cut to milliseconds',
      '2026-11-24T23:51:59.272899+00:00',
      '2026-11-24T23:51:59.272Z',
    ],
    ['Z', '2030-01-02T03:04:05Z', '2030-01-02T03:04:05.000Z'],
    ['no offset, read as UTC', '2030-01-02T03:04:05', '2030-01-02T03:04:05.000Z'],
    ['a positive offset', '2030-01-02T08:34:05+05:30', '2030-01-02T03:04:05.000Z'],
    ['a negative offset without colon', '2030-01-01T22:04:05-0500', '2030-01-02T03:04:05.000Z'],
    ['29 February of a leap year', '2024-02-29T00:00:00+00:00', '2024-02-29T00:00:00.000Z'],
    ['a year below 100', '0099-01-01T00:00:00+00:00', '0099-01-01T00:00:00.000Z'],
  ])('reads %s', (_, text, instant) => {
    // Prepare
    const expected = new Date(instant);

    // Act
    const parsed = parseCeleryTime(text);

    // Assess
    expect(parsed).toEqual(expected);
  });

  it.each([
    ['text', 'tomorrow'],
    ['month 13', '2030-13-02T03:04:05+00:00'],
    ['month 0', '2030-00-02T03:04:05+00:00'],
    ['30 February', '2024-02-30T00:00:00+00:00'],
    ['29 February of a common year', '2023-02-29T00:00:00+00:00'],
    ['hour 24', '2030-01-02T24:00:00+00:00'],
    ['minute 60', '2030-01-02T03:60:05+00:00'],
    ['second 61', '2030-01-02T03:04:61+00:00'],
    ['an offset of 24 hours', '2030-01-02T03:04:05+24:00'],
  ])('refuses %s, as Python datetime does', (_, text) => {
    // Prepare
    const input = text;

    // Act
    const parsed = parseCeleryTime(input);

    // Assess
    expect(parsed).toBeNull();
  });
});

describe('formatCeleryTime', () => {
  // Celery 5.2 reads the fraction digits as microseconds: `.678` would mean 678 µs.
  it.each([
    [
      'milliseconds as six fraction digits',
      '2030-01-02T03:04:05.678Z',
      '2030-01-02T03:04:05.678000+00:00',
    ],
    ['a leading zero kept', '2030-01-02T03:04:05.007Z', '2030-01-02T03:04:05.007000+00:00'],
    ['no fraction on a whole second', '2030-01-02T03:04:05.000Z', '2030-01-02T03:04:05+00:00'],
  ])('writes UTC with the +00:00 offset as Python isoformat does: %s', (_, input, expected) => {
    // Prepare
    const instant = new Date(input);

    // Act
    const text = formatCeleryTime(instant);

    // Assess
    expect(text).toBe(expected);
    expect(parseCeleryTime(text)).toEqual(instant);
  });
});
