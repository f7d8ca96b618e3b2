import { describe, expect, it } from 'vitest';
import { TopicIndex } from '../../src/actors/bus/topicIndex.js';
import { parsePattern, parseTopic } from '../../src/actors/bus/topics.js';
import { KeelError } from '../../src/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof KeelError ? e.code : 'not a KeelError';
  }
  return undefined;
}

describe('topics', () => {
  it.each([
    ['', 'empty'],
    ['a..b', 'empty token'],
    ['.a', 'leading dot'],
    ['a.', 'trailing dot'],
    ['a.>.b', '> not last'],
    ['a.b*', 'wildcard inside a token'],
    ['a.>x', '> inside a token'],
  ])('rejects the pattern %j (%s) with INVALID_TOPIC', (pattern) => {
    expect(codeOf(() => parsePattern(pattern))).toBe('INVALID_TOPIC');
  });

  it.each([['a.*'], ['a.>'], ['*'], ['>']])('rejects %j as a publish topic', (topic) => {
    expect(codeOf(() => parseTopic(topic))).toBe('INVALID_TOPIC');
  });

  it('accepts a topic without wildcards for publish', () => {
    expect(parseTopic('a.b.c')).toEqual(['a', 'b', 'c']);
  });

  it('rejects a topic that is not a string and names what it got', () => {
    expect(() => parseTopic(42)).toThrow(/must be a string, got number/);
    expect(codeOf(() => parsePattern(undefined))).toBe('INVALID_TOPIC');
  });

  it('names the offending topic in the message', () => {
    expect(() => parsePattern('order..placed')).toThrow(/order\.\.placed/);
  });

  it('accepts wildcards as whole tokens', () => {
    expect(parsePattern('order.*.created')).toEqual(['order', '*', 'created']);
    expect(parsePattern('order.>')).toEqual(['order', '>']);
  });
});

describe('topic index growth', () => {
  type Sub = { seq: number; wantsEvent: boolean };
  const patterns = (i: number) => [`tenant${i}.*.updated`, `orders.${i}.>`, `*.${i}.*`, `a.b.${i}`, `user${i}`];

  it('gives back every node when the last subscription of unique patterns goes', () => {
    const index = new TopicIndex<Sub>();
    const initial = index.nodeCount();
    let seq = 0;
    for (let i = 0; i < 2_000; i++) {
      for (const pattern of patterns(i)) {
        const sub = { seq: seq++, wantsEvent: false };
        index.add(pattern, sub);
        expect(index.nodeCount()).toBeGreaterThan(initial);
        index.remove(pattern, sub);
      }
    }
    expect(index.size).toBe(0);
    expect(index.nodeCount()).toBe(initial);
  });

  it('keeps the nodes other patterns still use, and prunes them once those go too', () => {
    const index = new TopicIndex<Sub>();
    const initial = index.nodeCount();
    const deep = { seq: 1, wantsEvent: false };
    const shallow = { seq: 2, wantsEvent: false };
    const rest = { seq: 3, wantsEvent: false };
    index.add('order.*.placed', deep);
    index.add('order.*', shallow);
    index.add('order.>', rest);
    index.remove('order.*.placed', deep);
    expect(index.match('order.eu').subs).toEqual([shallow, rest]);
    expect(index.match('order.eu.placed').subs).toEqual([rest]);
    index.remove('order.>', rest);
    expect(index.match('order.eu').subs).toEqual([shallow]);
    expect(index.nodeCount()).toBeGreaterThan(initial);
    index.remove('order.*', shallow);
    expect(index.match('order.eu').subs).toEqual([]);
    expect(index.nodeCount()).toBe(initial);
    // A pruned path is built again on the next subscribe.
    index.add('order.*.placed', deep);
    expect(index.match('order.eu.placed').subs).toEqual([deep]);
  });

  it('removing an absent subscription or pattern changes nothing', () => {
    const index = new TopicIndex<Sub>();
    const sub = { seq: 1, wantsEvent: false };
    index.add('a.*.c', sub);
    const held = index.nodeCount();
    index.remove('a.*.c', { seq: 2, wantsEvent: false });
    index.remove('a.*.d', sub);
    index.remove('a.*', sub);
    index.remove('x.>', sub);
    expect(index.nodeCount()).toBe(held);
    expect(index.match('a.b.c').subs).toEqual([sub]);
  });
});
