import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryStore, sqliteStore } from '../../src/index.js';
import type { ClaimedTask, Store } from '../../src/stores/store.js';

/**
 * Random sequences of store calls give the same answers from every store:
 * the contract suite checks chosen cases, this checks the cases nobody chose.
 */
type Op =
  | { op: 'tick'; ms: number }
  | { op: 'enqueue'; n: number; key: string | undefined; delay: number }
  | { op: 'claim'; limit: number }
  | { op: 'settle'; pick: number; kind: 'succeeded' | 'retrying' | 'dead' | 'released'; stale: boolean; d: number }
  | { op: 'expire'; max: number }
  | { op: 'renew'; pick: number }
  | { op: 'redrive'; id: number }
  | { op: 'inspect'; id: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 400 }) }),
  fc.record({
    op: fc.constant('enqueue' as const),
    n: fc.integer({ min: 0, max: 99 }),
    key: fc.constantFrom('a', 'b', 'c', undefined),
    delay: fc.constantFrom(0, 0, 50, 300),
  }),
  fc.record({ op: fc.constant('claim' as const), limit: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    op: fc.constant('settle' as const),
    pick: fc.nat(),
    kind: fc.constantFrom('succeeded' as const, 'retrying' as const, 'dead' as const, 'released' as const),
    stale: fc.boolean(),
    d: fc.integer({ min: 0, max: 300 }),
  }),
  fc.record({ op: fc.constant('expire' as const), max: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ op: fc.constant('renew' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('redrive' as const), id: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ op: fc.constant('inspect' as const), id: fc.integer({ min: 1, max: 12 }) }),
);

async function play(store: Store, ops: readonly Op[]): Promise<unknown[]> {
  await store.open();
  const out: unknown[] = [];
  const claimed: ClaimedTask[] = [];
  let now = 0;
  let tokens = 0;
  try {
    for (const o of ops) {
      switch (o.op) {
        case 'tick':
          now += o.ms;
          break;
        case 'enqueue':
          out.push(
            await store.enqueue(
              'q',
              [{ payload: JSON.stringify({ n: o.n }), runAt: now + o.delay, ...(o.key && { key: o.key }) }],
              now,
            ),
          );
          break;
        case 'claim': {
          const got = await store.claim('q', { limit: o.limit, now, leaseUntil: now + 200, token: `t${++tokens}` });
          claimed.push(...got);
          out.push(got);
          break;
        }
        case 'settle': {
          const c = claimed[o.pick % Math.max(1, claimed.length)];
          if (!c) break;
          const token = o.stale ? 'stale' : c.token;
          const base = { id: c.id, token };
          const outcome =
            o.kind === 'succeeded'
              ? { ...base, kind: o.kind }
              : o.kind === 'dead'
                ? { ...base, kind: o.kind, error: 'e' }
                : o.kind === 'retrying'
                  ? { ...base, kind: o.kind, runAt: now + o.d, error: 'r' }
                  : { ...base, kind: o.kind, runAt: now + o.d };
          out.push(await store.settle('q', [outcome], now));
          break;
        }
        case 'expire':
          out.push((await store.expireLeases('q', now, o.max)).sort((a, b) => Number(a.id) - Number(b.id)));
          break;
        case 'renew': {
          const c = claimed[o.pick % Math.max(1, claimed.length)];
          if (c) out.push(await store.renew('q', [{ id: c.id, token: c.token }], now + 200, now));
          break;
        }
        case 'redrive':
          out.push(await store.redrive('q', String(o.id), now));
          break;
        case 'inspect': {
          const rec = await store.get('q', String(o.id), now);
          out.push(rec && { ...rec, createdAt: 0 });
          break;
        }
      }
    }
    out.push(await store.stats('q', now), await store.nextDueAt('q'), await store.dead('q'));
    return out;
  } finally {
    await store.close();
  }
}

describe('stores agree (differential, fast-check)', () => {
  it('memory and sqlite give the same answers to any sequence of calls', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
        const [mem, sql] = await Promise.all([play(memoryStore(), ops), play(sqliteStore({ path: ':memory:' }), ops)]);
        expect(sql).toEqual(mem);
      }),
      { numRuns: 150 },
    );
  });
});
