/**
 * The ack plan of one consumer channel: one `basic.ack` (multiple) for a settled batch, but never
 * one that would also acknowledge a delivery another batch still holds.
 */
import { describe, expect, it } from 'vitest';
import { ChannelHolds } from '../../../../src/brokers/rabbitmq/channel-holds.js';

interface Item {
  readonly tag: number;
}

function holding(count: number, first = 1): { holds: ChannelHolds<Item>; items: Item[] } {
  const holds = new ChannelHolds<Item>((item) => item.tag);
  const items = Array.from({ length: count }, (_, index) => ({ tag: first + index }));
  for (const item of items) holds.hold(item);
  return { holds, items };
}

const tags = (items: readonly Item[]) => items.map((item) => item.tag);

describe('ChannelHolds', () => {
  it('acknowledges a batch holding the lowest tags with one multiple ack at its largest tag', () => {
    const { holds, items } = holding(6);

    const plan = holds.release(items.slice(0, 3).reverse());

    expect(plan.upTo?.tag).toBe(3);
    expect(plan.each).toEqual([]);
    expect(holds.size).toBe(3);
  });

  it('acks one by one a batch above a delivery still held, then covers the gap with one multiple ack', () => {
    const { holds, items } = holding(6);

    const later = holds.release(items.slice(3));
    const earlier = holds.release(items.slice(0, 3));

    expect(later.upTo).toBeUndefined();
    expect(tags(later.each)).toEqual([4, 5, 6]);
    // Tags 4–6 are acknowledged already; a multiple ack at 3 reaches only 1–3.
    expect(earlier.upTo?.tag).toBe(3);
    expect(earlier.each).toEqual([]);
    expect(holds.size).toBe(0);
  });

  it('splits a batch at the first delivery still held', () => {
    const { holds, items } = holding(5);

    const plan = holds.release([items[0], items[1], items[3], items[4]] as Item[]);

    expect(plan.upTo?.tag).toBe(2);
    expect(tags(plan.each)).toEqual([4, 5]);
    expect(holds.size).toBe(1);
    expect(holds.release([items[2] as Item]).upTo?.tag).toBe(3);
  });

  it('stays exact across compaction of a long run of settled deliveries', () => {
    const { holds, items } = holding(5000);
    const straggler = items[10] as Item;

    for (let start = 0; start < 5000; start += 100) {
      const batch = items.slice(start, start + 100).filter((item) => item !== straggler);
      const plan = holds.release(batch);
      if (start === 0) {
        expect(plan.upTo?.tag).toBe(10);
        expect(plan.each).toHaveLength(89);
      } else {
        expect(plan.upTo).toBeUndefined();
        expect(plan.each).toHaveLength(100);
      }
    }
    expect(holds.size).toBe(1);

    const last = holds.release([straggler]);
    const more = { tag: 5001 };
    holds.hold(more);

    expect(last.upTo).toBe(straggler);
    expect(holds.release([more]).upTo).toBe(more);
    expect(holds.size).toBe(0);
  });
});
