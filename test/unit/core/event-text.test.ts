import { describe, expect, it } from 'vitest';
import { taskReceived, taskSucceeded, workerEvent } from '../../../src/core/celery-events.js';
import { EventStamper, LamportClock } from '../../../src/core/event-dispatcher.js';
import { JsonTextWriter } from '../../../src/core/event-text.js';
import type { JsonValue } from '../../../src/core/json.js';
import { createTaskMessage } from '../../../src/core/message.js';

/** What the writer appends for `fields`, joined. */
function written(writer: JsonTextWriter, fields: Record<string, JsonValue | undefined>): string {
  const parts: string[] = [];
  writer.fields(fields, parts);
  return parts.join('');
}

/** What JSON.stringify writes for `fields`, as `,"key":value` runs (the writer's form). */
function stringified(fields: Record<string, JsonValue | undefined>): string {
  const json = JSON.stringify(fields);
  return json === '{}' ? '' : `,${json.slice(1, -1)}`;
}

/** A JSON text as it reads inside a JSON string. */
function quoted(json: string): string {
  return JSON.stringify(json).slice(1, -1);
}

const AWKWARD_STRINGS = [
  '',
  'plain ascii ~!',
  'a "quoted" word',
  'back\\slash',
  'tab\tnew\nline\r',
  '\u0000\u001f\u007f',
  'café ☕ 日本',
  'emoji 😀',
  'lone \ud800 surrogate \udfff',
  '\u2028\u2029',
  '</script>',
];

const AWKWARD_VALUES: readonly (JsonValue | undefined)[] = [
  ...AWKWARD_STRINGS,
  0,
  -0,
  1.5,
  1796488114.836,
  1e21,
  1e-7,
  -12,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  false,
  null,
  undefined,
  [1, 'two', null, [true]],
  { nested: { 'a "key"': 'v\\' }, list: [] },
];

/** Strings of random code points (control characters and surrogates included), seeded. */
function randomStrings(count: number): string[] {
  let seed = 42;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed;
  };
  return Array.from({ length: count }, () =>
    String.fromCharCode(
      ...Array.from({ length: next() % 24 }, () =>
        next() % 3 === 0 ? next() % 0x10000 : next() % 0x80,
      ),
    ),
  );
}

describe('JsonTextWriter', () => {
  const plain = new JsonTextWriter(false);
  const inString = new JsonTextWriter(true);

  it.each(AWKWARD_VALUES.map((value) => [JSON.stringify(value) ?? 'undefined', value]))(
    'writes %s as JSON.stringify does, and quoted as a JSON string holds it',
    (_name, value) => {
      const json = JSON.stringify(value);

      expect(plain.value(value)).toBe(json);
      expect(inString.value(value)).toBe(json === undefined ? undefined : quoted(json));
    },
  );

  it('writes random strings as JSON.stringify does, plain and quoted', () => {
    for (const text of randomStrings(2000)) {
      expect(plain.string(text)).toBe(JSON.stringify(text));
      expect(inString.string(text)).toBe(quoted(JSON.stringify(text)));
    }
  });

  it('writes fields in their order, keys escaped, undefined values and skipped keys left out', () => {
    const fields = {
      uuid: 't1',
      'a "key"': 1,
      gone: undefined,
      type: 'dropped',
      list: ['x'],
      '\u2028': null,
    };
    const skipping = new JsonTextWriter(false, ['type']);
    const { type: _type, ...kept } = fields;

    expect(written(skipping, fields)).toBe(stringified(kept));
    expect(written(new JsonTextWriter(true, ['type']), fields)).toBe(quoted(stringified(kept)));
    expect(written(skipping, {})).toBe('');
  });

  it('writes the same text for keys it no longer caches', () => {
    const writer = new JsonTextWriter(false);
    const many = Object.fromEntries(
      Array.from({ length: 300 }, (_, index) => [`k${index}`, index]),
    );

    expect(written(writer, many)).toBe(stringified(many));
    expect(written(writer, many)).toBe(stringified(many));
  });
});

describe('EventStamper, quoted', () => {
  it('writes every event as the plain stamper does, escaped for a JSON string', () => {
    const stamp = { hostname: 'fn "quoted" @env', pid: 7, now: () => 1234.5 };
    const message = createTaskMessage({
      task: 'orders.charge',
      queue: 'orders',
      args: ['ü', 'a"b'],
    });
    const drafts = [
      taskReceived(message),
      taskSucceeded(message.id, { text: 'back\\slash ☕' }, 0.25),
      workerEvent('heartbeat', { active: 1, processed: 2, loadavg: [0.5, 0.25, 0] }),
    ];

    for (const draft of drafts) {
      const plain = new EventStamper({ ...stamp, clock: new LamportClock(4) }).stamp(draft);
      const inString = new EventStamper({ ...stamp, clock: new LamportClock(4) }, { quoted: true });

      expect(inString.stamp(draft).json).toBe(quoted(plain.json));
      expect(plain.json).toBe(JSON.stringify(JSON.parse(plain.json)));
    }
  });
});
