import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TopicIndex } from '../../src/actors/bus/topicIndex.js';

/** The obvious definition of a match, token by token. */
function matches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

const token = fc.constantFrom('a', 'b', 'c', '__proto__');
const topic = fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => t.join('.'));
const pattern = fc
  .tuple(fc.array(fc.oneof(token, fc.constant('*')), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([tokens, rest]) => (rest ? [...tokens.slice(0, -1), '>'] : tokens).join('.'));
const op = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), pattern }),
  fc.record({ kind: fc.constant('remove' as const), index: fc.nat(20) }),
  fc.record({ kind: fc.constant('publish' as const), topic }),
);

describe('TopicIndex', () => {
  it('matches exactly the subscriptions the token-by-token definition says, in subscription order', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const index = new TopicIndex<{ seq: number; pattern: string; wantsEvent: boolean }>();
        const live: Array<{ seq: number; pattern: string; wantsEvent: boolean }> = [];
        let seq = 0;
        for (const o of ops) {
          if (o.kind === 'add') {
            const sub = { seq: seq++, pattern: o.pattern, wantsEvent: seq % 2 === 0 };
            index.add(o.pattern, sub);
            live.push(sub);
          } else if (o.kind === 'remove') {
            const sub = live[o.index % Math.max(live.length, 1)];
            if (!sub) continue;
            index.remove(sub.pattern, sub);
            live.splice(live.indexOf(sub), 1);
          } else {
            const expected = live.filter((s) => matches(s.pattern, o.topic)).map((s) => s.seq);
            const route = index.match(o.topic);
            expect(route.subs.map((s) => s.seq)).toEqual(expected);
            expect(route.wantsEvent).toBe(route.subs.some((s) => s.wantsEvent));
          }
          expect(index.size).toBe(live.length);
        }
        // Unsubscribing everything leaves the index as it started: no subscriptions and no leftover nodes.
        for (const sub of live) index.remove(sub.pattern, sub);
        expect(index.size).toBe(0);
        expect(index.nodeCount()).toBe(new TopicIndex().nodeCount());
        for (const o of ops) if (o.kind === 'publish') expect(index.match(o.topic).subs).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
