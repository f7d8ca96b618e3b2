import { afterAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import type { SagaRecord } from '../../src/stores/sagaStore.js';
import type { Outcome } from '../../src/stores/store.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';

const fresh = freshSchemas('locks');

/** A shuffled copy (a fixed seed: a failing round can be replayed). */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Statements that write many task rows at once (settle, renew, lease expiry,
 * enqueue with keys) run at the same time on the same rows, as they do when
 * several processes share a queue and a lease runs out while its owner
 * settles. Each takes its row locks in one order (or skips locked rows), so
 * none of them can fail with "deadlock detected" (40P01).
 */
describe.skipIf(!pgAvailable)('postgres statements never deadlock each other', () => {
  const schema = fresh();
  const stores = [0, 1, 2].map(() => postgresStore({ connectionString: PG_URL, schema, poolSize: 4 }));
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it('settle, renew, expiry, claims and keyed enqueues of the same rows, in clashing orders', {
    timeout: 60_000,
  }, async () => {
    await Promise.all(stores.map((s) => s.open()));
    const [a, b, c] = stores as [(typeof stores)[0], (typeof stores)[0], (typeof stores)[0]];
    const N = 60;
    let now = 1_000;
    let settled = 0;
    for (let round = 0; round < 40; round++) {
      const q = `q${round}`;
      await a.enqueue(
        q,
        Array.from({ length: N }, (_, n) => ({ payload: JSON.stringify({ n }), runAt: 0 })),
        now,
      );
      // Leases that end now: expiry may take any of them while their holder settles and renews them.
      const claimed = await a.claim(q, { limit: N, now, leaseUntil: now, token: `t${round}` });
      expect(claimed).toHaveLength(N);
      const outcomes: Outcome[] = shuffled(claimed, round + 1).map((t, i) =>
        i % 3 === 0
          ? { kind: 'retrying', id: t.id, token: t.token, runAt: now, error: 'x' }
          : i % 3 === 1
            ? { kind: 'succeeded', id: t.id, token: t.token }
            : { kind: 'released', id: t.id, token: t.token, runAt: now },
      );
      const keyed = Array.from({ length: N }, (_, n) => ({ payload: '{}', key: `k${n}`, runAt: 0 }));
      const leases = shuffled(claimed, round + 7).map((t) => ({ id: t.id, token: t.token }));
      now += 1;
      const results = await Promise.allSettled([
        a.settle(q, outcomes.slice(0, N / 2), now),
        b.settle(q, outcomes.slice(N / 2).reverse(), now),
        a.renew(q, leases, now + 1000, now),
        b.renew(q, [...leases].reverse(), now + 1000, now),
        c.expireLeases(q, now, 5),
        b.expireLeases(q, now, 5),
        c.claim(q, { limit: N, now, leaseUntil: now + 1000, token: `u${round}` }),
        // The same keys from two producers, in opposite orders.
        a.enqueue(`${q}k`, keyed, now),
        b.enqueue(`${q}k`, [...keyed].reverse(), now),
      ]);
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
      expect(failed, `round ${round}`).toEqual([]);
      const applied = (results[0] as PromiseFulfilledResult<boolean[]>).value.concat(
        (results[1] as PromiseFulfilledResult<boolean[]>).value,
      );
      settled += applied.filter(Boolean).length;
      // Every task is still there exactly once, or was settled as succeeded.
      const stats = await c.stats(q, now);
      const total = stats.pending + stats.active + stats.retrying + stats.dead + stats.succeeded;
      expect(total, `round ${round}`).toBe(N);
      // Each key was enqueued once: the other producer got the same task back as a duplicate.
      expect((await c.stats(`${q}k`, now)).pending, `round ${round}`).toBe(N);
    }
    expect(settled).toBeGreaterThan(0);
  });

  it('saga saves and lease renewals of the same sagas, in clashing orders', { timeout: 60_000 }, async () => {
    await Promise.all(stores.map((s) => s.open()));
    const a = stores[0]!;
    const N = 40;
    const ids = Array.from({ length: N }, (_, n) => `s${String(n).padStart(2, '0')}`);
    const record = (id: string, round: number): SagaRecord => ({
      saga: 'locks',
      id,
      version: 'v',
      status: 'running',
      state: JSON.stringify({ running: 'a' }),
      context: JSON.stringify({ round }),
      attempt: 1,
      notBefore: undefined,
      createdAt: 1,
      updatedAt: 1_000 + round,
    });
    for (const id of ids) await a.saveSaga(record(id, 0));
    for (let round = 1; round <= 40; round++) {
      const now = 1_000 + round;
      // One tick of saves is one statement: the saves go in a shuffled order, the renewals in two others.
      const saves = shuffled(ids, round).map((id) => a.saveSaga(record(id, round)));
      const results = await Promise.allSettled([
        ...saves,
        a.renewSagas?.('locks', [...ids].reverse(), now),
        a.renewSagas?.('locks', shuffled(ids, round + 99), now),
      ]);
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
      expect(failed, `round ${round}`).toEqual([]);
    }
    const last = await a.loadSaga('locks', 's07');
    expect(JSON.parse(last?.context ?? '{}')).toEqual({ round: 40 });
  });
});
