/**
 * Celery's timestamps: ISO 8601 strings with an offset (`2030-01-02T03:04:05+00:00`), written by
 * Python's `datetime.isoformat()`. Python producers may also send `Z` or, from naive datetimes, no
 * offset at all; Celery reads a naive value as UTC, and so do we.
 */

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Parses a Celery timestamp.
 *
 * Microseconds beyond the millisecond are truncated (a JS `Date` holds milliseconds). A value
 * without an offset is UTC, as in Celery's `maybe_make_aware`.
 *
 * @returns the instant, or `null` when the text is not ISO 8601
 */
export function parseCeleryTime(text: string): Date | null {
  const match = ISO_8601.exec(text.trim());
  if (!match) return null;
  const [, year, month, day, hour, minute, second, fraction, offset] = match;
  const fields = [Number(hour ?? 0), Number(minute ?? 0), Number(second ?? 0)] as const;
  const offsetMinutes = readOffsetMinutes(offset);
  // Date.UTC rolls out-of-range fields over (month 13 → next January, 10:60 → 11:00); Python's
  // datetime refuses them, and so does Celery's parser.
  if (fields[0] > 23 || fields[1] > 59 || fields[2] > 59 || offsetMinutes === null) return null;
  const millis = fraction ? Number(fraction.padEnd(3, '0').slice(0, 3)) : 0;
  const date = new Date(Date.UTC(2000, Number(month) - 1, Number(day), ...fields, millis));
  // Date.UTC maps years 0–99 to 1900–1999: set the year on its own.
  date.setUTCFullYear(Number(year));
  // A rolled-over day (2024-02-31) or month (2024-13-01) shows up as a changed month or day.
  if (date.getUTCMonth() !== Number(month) - 1 || date.getUTCDate() !== Number(day)) return null;
  return new Date(date.getTime() - offsetMinutes * 60_000);
}

/** Minutes east of UTC, or `null` for an offset Python refuses (24 hours or more). */
function readOffsetMinutes(offset: string | undefined): number | null {
  if (!offset || offset.toUpperCase() === 'Z') return 0;
  const sign = offset.startsWith('-') ? -1 : 1;
  const digits = offset.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = digits.length > 2 ? Number(digits.slice(2)) : 0;
  if (hours > 23 || minutes > 59) return null;
  return sign * (hours * 60 + minutes);
}

/**
 * Formats an instant the way Celery writes it in headers, as Python's `datetime.isoformat()` of
 * an aware UTC time: a `+00:00` offset and six fraction digits (none on a whole second).
 *
 * Six digits, never three: Celery 5.2's own parser (`celery.utils.iso8601`) reads the fraction
 * digits as a whole number of microseconds, so `.764` would be 764 µs and a Python worker would
 * run an eta up to a second early (observed).
 *
 * @example
 * formatCeleryTime(new Date(0)); // '1970-01-01T00:00:00+00:00'
 * formatCeleryTime(new Date('2030-01-02T03:04:05.678Z')); // '2030-01-02T03:04:05.678000+00:00'
 */
export function formatCeleryTime(date: Date): string {
  const iso = date.toISOString();
  const millis = date.getUTCMilliseconds();
  const fraction = millis === 0 ? '' : `.${String(millis).padStart(3, '0')}000`;
  return `${iso.slice(0, iso.indexOf('.'))}${fraction}+00:00`;
}
