import { beforeEach, describe, expect, it } from 'vitest';
import type { ClaimLimits, NewTask, Store } from '../../src/stores/store.js';
import { openedStore, type StoreFactory } from './contract.js';

const Q = 'q';
const t = (n: number, extra: Partial<NewTask> = {}, runAt = 0): NewTask => ({
  payload: JSON.stringify(n),
  runAt,
  ...extra,
});
const nums = (tasks: { payload: string }[]) => tasks.map((x) => JSON.parse(x.payload) as number);

/**
 * Issue #15 points 1-3, the claim half: priorities, groups taking turns and
 * the fleet-wide limits, enforced by `claim` itself. Every store runs it
 * (from `storeContract`).
 */
export function claimContract(name: string, factory: StoreFactory): void {
  describe(`claim order and limits: ${name}`, () => {
    const opened = openedStore(factory);
    let store: Store;
    let seq = 0;
    beforeEach(() => {
      store = opened();
    });
    const claim = (now: number, limit = 10, limits?: ClaimLimits) =>
      store.claim(Q, { limit, now, leaseUntil: now + 10_000, token: `c${++seq}`, ...(limits && { limits }) });
    const succeed = (tasks: { id: string; token: string }[], now: number) =>
      store.settle(
        Q,
        tasks.map((x) => ({ kind: 'succeeded' as const, id: x.id, token: x.token })),
        now,
      );

    it('claims the lowest priority first, FIFO within one, negatives before the default 0', async () => {
      await store.enqueue(
        Q,
        [t(1), t(2, { priority: 5 }), t(3, { priority: -1 }), t(4), t(5, { priority: 5 }), t(6, { priority: -1 })],
        0,
      );
      const got = await claim(1, 3);
      expect(nums(got)).toEqual([3, 6, 1]);
      expect(got[0]).toMatchObject({ priority: -1 });
      expect(got[2]!.priority).toBeUndefined();
      expect(nums(await claim(1, 10))).toEqual([4, 2, 5]);
    });

    it('a task enqueued later with a lower priority number overtakes the waiting ones', async () => {
      await store.enqueue(
        Q,
        Array.from({ length: 20 }, (_, i) => t(i)),
        0,
      );
      expect(nums(await claim(1, 5))).toEqual([0, 1, 2, 3, 4]);
      await store.enqueue(Q, [t(100, { priority: -10 })], 2);
      expect(nums(await claim(3, 2))).toEqual([100, 5]);
    });

    it('priority orders due tasks only: a delayed urgent task waits for its time', async () => {
      await store.enqueue(Q, [t(1, { priority: -5 }, 100), t(2)], 0);
      expect(nums(await claim(1))).toEqual([2]);
      expect(nums(await claim(100))).toEqual([1]);
    });

    it('redrive keeps the priority and the group', async () => {
      await store.enqueue(Q, [t(1, { priority: 3, group: 'g' })], 0);
      const [a] = await claim(1);
      expect(a).toMatchObject({ priority: 3, group: 'g' });
      await store.settle(Q, [{ kind: 'dead', id: a!.id, token: a!.token, error: 'x' }], 2);
      expect((await store.dead(Q))[0]).toMatchObject({ priority: 3, group: 'g' });
      await store.enqueue(Q, [t(2, { priority: 4 })], 3);
      expect(await store.redrive(Q, a!.id, 4)).toBe('redriven');
      expect(await store.get(Q, a!.id, 4)).toMatchObject({ state: 'pending', priority: 3, group: 'g' });
      // Its group takes turns again after being found empty while it was dead.
      const again = await claim(5, 1);
      expect(again.length).toBe(1);
      const rest = await claim(5, 5);
      expect(nums([...again, ...rest]).sort()).toEqual([1, 2]);
    });

    it('globalConcurrency: a claim takes only what leaves active tasks at the limit; the rest stays pending', async () => {
      await store.enqueue(
        Q,
        Array.from({ length: 10 }, (_, i) => t(i)),
        0,
      );
      const limits = { globalConcurrency: 3 };
      const first = await claim(1, 10, limits);
      expect(first).toHaveLength(3);
      expect(await claim(2, 10, limits)).toEqual([]);
      expect((await store.stats(Q, 2)).pending).toBe(7);
      await succeed(first.slice(0, 2), 3);
      expect(await claim(4, 10, limits)).toHaveLength(2);
      expect(await claim(5, 10, limits)).toEqual([]);
      // An expired lease frees its slot too.
      await store.expireLeases(Q, 20_000, 5);
      expect(await claim(20_001, 10, limits)).toHaveLength(3);
    });

    it("globalConcurrency: the claimer's finished tasks (outcome on its way) free their slots; a stale token does not", async () => {
      await store.enqueue(
        Q,
        Array.from({ length: 10 }, (_, i) => t(i)),
        0,
      );
      const limits = { globalConcurrency: 3 };
      const first = await claim(1, 10, limits);
      expect(first).toHaveLength(3);
      const ask = (now: number, finished: { id: string; token: string }[], l: ClaimLimits = limits) =>
        store.claim(Q, { limit: 10, now, leaseUntil: now + 10_000, token: `c${++seq}`, limits: l, finished });
      // Two have returned: two slots, though the store still holds all three active.
      const second = await ask(2, first.slice(0, 2));
      expect(second).toHaveLength(2);
      expect((await store.stats(Q, 2)).active).toBe(5);
      // A finished task named with a token it no longer holds (its lease passed on) still counts.
      expect(await ask(3, [...first.slice(0, 2), { id: first[2]!.id, token: 'not-its-token' }])).toEqual([]);
      // Settled later, the outcomes still apply (their leases were kept).
      expect(await succeed(first.slice(0, 2), 4)).toEqual([true, true]);
      expect(await ask(5, [])).toEqual([]);
      // A group still counts its finished tasks: its next task waits for the stored outcome.
      await store.enqueue(Q, [t(100, { group: 'g' }), t(101, { group: 'g' })], 6);
      const grouped = { groupConcurrency: 1 };
      const g1 = (await ask(7, [], grouped)).filter((x) => x.group === 'g');
      expect(nums(g1)).toEqual([100]);
      const g2 = await ask(8, g1, grouped);
      expect(g2.filter((x) => x.group === 'g')).toEqual([]);
    });

    it('rateLimit: at most max claims in any perMs window', async () => {
      await store.enqueue(
        Q,
        Array.from({ length: 20 }, (_, i) => t(i)),
        0,
      );
      const limits = { rateLimit: { max: 3, perMs: 100 } };
      expect(await claim(0, 2, limits)).toHaveLength(2);
      expect(await claim(50, 10, limits)).toHaveLength(1);
      expect(await claim(99, 10, limits)).toHaveLength(0);
      // The two of time 0 left the window; the one of time 50 is still in it.
      expect(await claim(100, 10, limits)).toHaveLength(2);
      expect(await claim(149, 10, limits)).toHaveLength(0);
      expect(await claim(150, 10, limits)).toHaveLength(1);
    });

    it('groups take turns: a group enqueued behind a large backlog is served at the next claim', async () => {
      await store.enqueue(
        Q,
        Array.from({ length: 500 }, (_, i) => t(i, { group: 'A' })),
        0,
      );
      expect(nums(await claim(1, 5))).toEqual([0, 1, 2, 3, 4]);
      await store.enqueue(
        Q,
        Array.from({ length: 10 }, (_, i) => t(1000 + i, { group: 'B' })),
        2,
      );
      const next = await claim(3, 5);
      expect(next.every((x) => x.group === 'B')).toBe(true);
      // A was served last: it goes after B, and then they alternate.
      const after = await claim(4, 5);
      expect(after.every((x) => x.group === 'A')).toBe(true);
      expect((await claim(5, 5)).every((x) => x.group === 'B')).toBe(true);
    });

    it('one claim serves many groups in turn order; a group it reached goes behind the ones it did not', async () => {
      const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
      const tasks: NewTask[] = [];
      // Interleaved: a1 b1 ... j1 a2 b2 ... (payload = group index * 10 + round).
      for (let round = 1; round <= 3; round++) {
        for (const [i, g] of names.entries()) tasks.push(t(i * 10 + round, { group: g }));
      }
      await store.enqueue(Q, tasks, 0);
      const sorted = (xs: { payload: string }[]) => nums(xs).sort((x, y) => x - y);
      expect(sorted(await claim(1, 7))).toEqual([1, 2, 3, 11, 12, 13, 21]);
      expect(sorted(await claim(2, 7))).toEqual([31, 32, 33, 41, 42, 43, 51]);
      expect(sorted(await claim(3, 7))).toEqual([61, 62, 63, 71, 72, 73, 81]);
      // j was never reached: it goes first; then the partly served c and f, in the order they were reached.
      expect(sorted(await claim(4, 7))).toEqual([22, 23, 52, 53, 91, 92, 93]);
      expect(sorted(await claim(5, 7))).toEqual([82, 83]);
    });

    it('groupConcurrency 1 over many groups: one claim starts the first task of each, none of a full group', async () => {
      const tasks: NewTask[] = [];
      for (let round = 0; round < 3; round++)
        for (let g = 0; g < 60; g++) tasks.push(t(round * 100 + g, { group: `u${g}` }));
      await store.enqueue(Q, tasks, 0);
      const limits = { groupConcurrency: 1 };
      const first = await claim(1, 500, limits);
      expect(nums(first).sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, g) => g));
      expect(await claim(2, 500, limits)).toEqual([]);
      await succeed(first.slice(0, 30), 3);
      const next = await claim(4, 500, limits);
      expect(nums(next).sort((x, y) => x - y)).toEqual(
        nums(first.slice(0, 30))
          .map((n) => n + 100)
          .sort((x, y) => x - y),
      );
    });

    it('tasks without a group take their turn as one more group, and are not starved by groups', async () => {
      await store.enqueue(
        Q,
        Array.from({ length: 50 }, (_, i) => t(i, { group: 'A' })),
        0,
      );
      await store.enqueue(Q, [t(100), t(101)], 0);
      const seen = new Set<string>();
      for (let i = 0; i < 3; i++) for (const x of await claim(1 + i, 5)) seen.add(x.group ?? '-');
      expect(seen).toEqual(new Set(['A', '-']));
    });

    it('groupConcurrency 1: one task of a group at a time, in enqueue order, even through a retry; groups in parallel', async () => {
      await store.enqueue(
        Q,
        [t(1, { group: 'u1' }), t(2, { group: 'u2' }), t(3, { group: 'u1' }), t(4, { group: 'u2' })],
        0,
      );
      const limits = { groupConcurrency: 1 };
      const first = await claim(1, 10, limits);
      expect(nums(first).sort()).toEqual([1, 2]);
      expect(await claim(2, 10, limits)).toEqual([]);
      const one = first.find((x) => x.group === 'u1')!;
      const two = first.find((x) => x.group === 'u2')!;
      // u1's first task fails and waits out a backoff: it keeps u1's slot, so task 3 does not overtake it.
      await store.settle(Q, [{ kind: 'retrying', id: one.id, token: one.token, runAt: 100, error: 'x' }], 3);
      await succeed([two], 3);
      expect(nums(await claim(4, 10, limits))).toEqual([4]);
      const retried = await claim(100, 10, limits);
      expect(nums(retried)).toEqual([1]);
      await succeed(retried, 101);
      expect(nums(await claim(102, 10, limits))).toEqual([3]);
    });

    it('groupConcurrency counts fleet-wide: a second claimer (another token) gets nothing of a full group', async () => {
      await store.enqueue(
        Q,
        Array.from({ length: 6 }, (_, i) => t(i, { group: 'g' })),
        0,
      );
      const limits = { groupConcurrency: 2 };
      const a = await store.claim(Q, { limit: 10, now: 1, leaseUntil: 1000, token: 'p1', limits });
      const b = await store.claim(Q, { limit: 10, now: 1, leaseUntil: 1000, token: 'p2', limits });
      expect(a).toHaveLength(2);
      expect(b).toHaveLength(0);
    });

    it('groupRateLimit: at most max claims of one group in any perMs window; other groups are not held back', async () => {
      await store.enqueue(
        Q,
        [
          ...Array.from({ length: 5 }, (_, i) => t(i, { group: 'a' })),
          ...Array.from({ length: 5 }, (_, i) => t(10 + i, { group: 'b' })),
        ],
        0,
      );
      const limits = { groupRateLimit: { max: 2, perMs: 100 } };
      const first = await claim(1, 10, limits);
      expect(nums(first).sort((x, y) => x - y)).toEqual([0, 1, 10, 11]);
      expect(await claim(50, 10, limits)).toEqual([]);
      expect(nums(await claim(101, 10, limits)).sort((x, y) => x - y)).toEqual([2, 3, 12, 13]);
    });

    it('a group that ran dry takes turns again when a task arrives', async () => {
      await store.enqueue(Q, [t(1, { group: 'g' })], 0);
      const [a] = await claim(1);
      await succeed([a!], 2);
      expect(await claim(3)).toEqual([]);
      await store.enqueue(Q, [t(2, { group: 'g' }), t(3)], 4);
      expect(nums(await claim(5)).sort()).toEqual([2, 3]);
    });

    it('nextDueAt still reports due work that a limit or a group holds back', async () => {
      await store.enqueue(Q, [t(1, { group: 'g' }), t(2, { group: 'g' }), t(3, { priority: 1 })], 5);
      const limits = { groupConcurrency: 1, globalConcurrency: 1 };
      expect(await claim(10, 10, limits)).toHaveLength(1);
      expect(await claim(11, 10, limits)).toEqual([]);
      const due = await store.nextDueAt(Q);
      expect(due).toBeDefined();
      expect(due!).toBeLessThanOrEqual(11);
    });

    it('get and the claim carry priority and group', async () => {
      const { id } = (await store.enqueue(Q, [t(1, { priority: -2, group: 'tenant' })], 0))[0]!;
      expect(await store.get(Q, id, 0)).toMatchObject({ priority: -2, group: 'tenant', state: 'pending' });
      expect((await claim(1))[0]).toMatchObject({ id, priority: -2, group: 'tenant' });
    });
  });
}
