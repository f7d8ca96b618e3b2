import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../src/actors/queue/retention.js';
import { createRuntime, KeelError, type Runtime } from '../../src/index.js';
import type { Retention, Store } from '../../src/stores/store.js';
import { TestClock } from '../../src/testing/index.js';
import { openedStore, type StoreFactory } from './contract.js';

const Q = 'h';
const task = (payload: unknown, runAt = 0, key?: string, replace?: boolean) => ({
  payload: JSON.stringify(payload),
  runAt,
  ...(key !== undefined && { key }),
  ...(replace && { replace }),
});
const keepAll: Retention = {
  succeeded: { count: Number.POSITIVE_INFINITY, ageMs: Number.POSITIVE_INFINITY },
  dead: { count: Number.POSITIVE_INFINITY, ageMs: Number.POSITIVE_INFINITY },
  cancelled: { count: Number.POSITIVE_INFINITY, ageMs: Number.POSITIVE_INFINITY },
};

/** Lets a networked store (postgres) answer: its replies come in real time, not in a turn of the event loop. */
const tick = (ms = 15) => new Promise((r) => setTimeout(r, ms));

/**
 * `q.drain()`, or a failure saying what the store holds if it has not finished
 * in 15 s of real time (a drain that hangs would otherwise show only the test's timeout).
 */
async function drained(q: { drain(): Promise<void>; stats(): Promise<unknown> }): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), 15_000);
  });
  const outcome = await Promise.race([q.drain().then(() => 'drained' as const), hung]);
  clearTimeout(timer);
  if (outcome === 'hung')
    throw new Error(`drain did not finish in 15 s; the store says ${JSON.stringify(await q.stats())}`);
}

/**
 * Task history, cancel, progress, replace, list and retention (issues #15 and
 * #16): the part of the store contract every store passes, and the queue
 * behaviour on top of it. Run from `test/stores/<store>.test.ts`.
 */
export function historyContract(name: string, factory: StoreFactory): void {
  describe(`task history contract: ${name}`, () => {
    const opened = openedStore(factory);
    let store: Store;
    beforeEach(() => {
      store = opened();
    });
    const claim = (now: number, limit = 10, token = `t${now}`) =>
      store.claim(Q, { limit, now, leaseUntil: now + 1000, token });

    it('keeps a succeeded task with its result, attempts and times', async () => {
      const [e] = await store.enqueue(Q, [task({ a: 1 }, 5, 'k')], 3);
      await store.settle(
        Q,
        [{ kind: 'retrying', id: e!.id, token: (await claim(10))[0]!.token, runAt: 20, error: 'E1' }],
        11,
      );
      const [t2] = await claim(20);
      expect(t2!.attempt).toBe(2);
      expect(
        await store.settle(Q, [{ kind: 'succeeded', id: e!.id, token: t2!.token, result: '{"ok":true}' }], 25),
      ).toEqual([true]);
      const rec = await store.get(Q, e!.id, 30);
      expect(rec).toMatchObject({
        id: e!.id,
        state: 'succeeded',
        payload: '{"a":1}',
        key: 'k',
        result: '{"ok":true}',
        lastError: 'E1',
        attempt: 2,
        createdAt: 3,
        startedAt: 10,
        finishedAt: 25,
      });
      // Its key is free again.
      expect((await store.enqueue(Q, [task(2, 0, 'k')], 31))[0]!.deduplicated).toBe(false);
    });

    it('a dead task reads with when it died; a redriven one starts over', async () => {
      const [e] = await store.enqueue(Q, [task(1)], 0);
      const [t] = await claim(1);
      await store.settle(Q, [{ kind: 'dead', id: e!.id, token: t!.token, error: 'boom' }], 7);
      expect(await store.get(Q, e!.id, 8)).toMatchObject({
        state: 'dead',
        finishedAt: 7,
        startedAt: 1,
        lastError: 'boom',
      });
      expect(await store.redrive(Q, e!.id, 9)).toBe('redriven');
      const rec = await store.get(Q, e!.id, 9);
      expect(rec).toMatchObject({ state: 'pending', attempt: 0 });
      expect(rec!.finishedAt).toBeUndefined();
    });

    it('cancels pending, retrying and active tasks; answers finished and not-found', async () => {
      const ids = (await store.enqueue(Q, [task('p'), task('r'), task('a'), task('s'), task('d')], 0)).map((r) => r.id);
      const [p, r, a, s, d] = ids as [string, string, string, string, string];
      const claimed = await store.claim(Q, { limit: 5, now: 1, leaseUntil: 1000, token: 'T' });
      expect(claimed).toHaveLength(5);
      await store.settle(
        Q,
        [
          { kind: 'released', id: p, token: 'T', runAt: 1 },
          { kind: 'retrying', id: r, token: 'T', runAt: 500, error: 'x' },
          { kind: 'succeeded', id: s, token: 'T' },
          { kind: 'dead', id: d, token: 'T', error: 'y' },
        ],
        2,
      );
      expect(await store.cancel(Q, p, 3)).toBe('cancelled');
      expect(await store.cancel(Q, r, 3)).toBe('cancelled');
      expect(await store.cancel(Q, a, 3)).toBe('cancelled');
      expect(await store.cancel(Q, p, 4)).toBe('finished');
      expect(await store.cancel(Q, s, 4)).toBe('finished');
      expect(await store.cancel(Q, d, 4)).toBe('finished');
      expect(await store.cancel(Q, '999999', 4)).toBe('not-found');
      expect(await store.cancel(Q, 'nope', 4)).toBe('not-found');
      expect(await store.cancel('other', p, 4)).toBe('not-found');
      for (const id of [p, r, a])
        expect(await store.get(Q, id, 5)).toMatchObject({ state: 'cancelled', finishedAt: 3 });
      // None of them is ever claimed again, and the holder of the active one lost its lease.
      expect(await store.claim(Q, { limit: 10, now: 10_000, leaseUntil: 20_000, token: 'U' })).toEqual([]);
      expect(await store.renew(Q, [{ id: a, token: 'T' }], 2000, 5)).toEqual([a]);
      expect(await store.settle(Q, [{ kind: 'succeeded', id: a, token: 'T' }], 6)).toEqual([false]);
      expect(await store.stats(Q, 7)).toEqual({
        pending: 0,
        active: 0,
        retrying: 0,
        succeeded: 1,
        dead: 1,
        cancelled: 3,
      });
      expect(await store.nextDueAt(Q)).toSatisfy((t: number | undefined) => t === undefined || t <= 10_000);
    });

    it('a cancelled task frees its key', async () => {
      const [e] = await store.enqueue(Q, [task(1, 0, 'k')], 0);
      expect(await store.cancel(Q, e!.id, 1)).toBe('cancelled');
      const [again] = await store.enqueue(Q, [task(2, 0, 'k')], 2);
      expect(again).toMatchObject({ deduplicated: false });
      expect(again!.id).not.toBe(e!.id);
    });

    it('stores progress only while the lease token matches; the finished task keeps the last value', async () => {
      const [e] = await store.enqueue(Q, [task(1)], 0);
      const [t] = await claim(1);
      expect(await store.progress(Q, [{ id: e!.id, token: 'stale', progress: '1' }], 2)).toEqual([false]);
      expect(await store.progress(Q, [{ id: e!.id, token: t!.token, progress: '{"pct":50}' }], 2)).toEqual([true]);
      expect((await store.get(Q, e!.id, 3))!.progress).toBe('{"pct":50}');
      await store.settle(Q, [{ kind: 'succeeded', id: e!.id, token: t!.token }], 4);
      expect(await store.get(Q, e!.id, 5)).toMatchObject({ state: 'succeeded', progress: '{"pct":50}' });
      expect(await store.progress(Q, [{ id: e!.id, token: t!.token, progress: '2' }], 6)).toEqual([false]);
    });

    it("onDuplicate 'replace' replaces a pending holder's payload, never an active or retrying one", async () => {
      const [first] = await store.enqueue(Q, [task('v1', 0, 'k')], 0);
      const [second] = await store.enqueue(Q, [task('v2', 0, 'k', true)], 1);
      expect(second).toEqual({ id: first!.id, deduplicated: false, replaced: true });
      expect((await store.get(Q, first!.id, 2))!.payload).toBe('"v2"');
      // Without replace the holder keeps its payload.
      expect((await store.enqueue(Q, [task('v3', 0, 'k')], 2))[0]).toEqual({ id: first!.id, deduplicated: true });
      expect((await store.get(Q, first!.id, 2))!.payload).toBe('"v2"');
      // Two replacing enqueues of one key in one batch: the last payload wins.
      const both = await store.enqueue(Q, [task('v4', 0, 'k', true), task('v5', 0, 'k', true)], 3);
      expect(both.map((r) => r.id)).toEqual([first!.id, first!.id]);
      expect((await store.get(Q, first!.id, 3))!.payload).toBe('"v5"');
      // Active: it has started, so it is not replaced.
      const [t] = await claim(4);
      expect((await store.enqueue(Q, [task('v6', 0, 'k', true)], 5))[0]).toEqual({ id: first!.id, deduplicated: true });
      expect((await store.get(Q, first!.id, 5))!.payload).toBe('"v5"');
      // Retrying: the same.
      await store.settle(Q, [{ kind: 'retrying', id: t!.id, token: t!.token, runAt: 100, error: 'e' }], 6);
      expect((await store.enqueue(Q, [task('v7', 0, 'k', true)], 7))[0]).toEqual({ id: first!.id, deduplicated: true });
      expect((await store.get(Q, first!.id, 7))!.payload).toBe('"v5"');
      // No holder: a replacing enqueue adds a task like any other.
      const [fresh] = await store.enqueue(Q, [task('n', 0, 'other', true)], 8);
      expect(fresh).toMatchObject({ deduplicated: false });
      expect(fresh!.replaced).toBeUndefined();
    });

    it('lists tasks of every state, oldest first, page by page, filtered by state and key', async () => {
      const ids = (
        await store.enqueue(
          Q,
          Array.from({ length: 7 }, (_, i) => task(i, 0, `k${i % 2}${i}`)),
          0,
        )
      ).map((r) => r.id);
      await store.enqueue('other', [task('x')], 0);
      const claimed = await store.claim(Q, { limit: 4, now: 1, leaseUntil: 1000, token: 'T' });
      expect(claimed.map((c) => c.id)).toEqual(ids.slice(0, 4));
      await store.settle(
        Q,
        [
          { kind: 'succeeded', id: ids[0]!, token: 'T', result: '1' },
          { kind: 'dead', id: ids[1]!, token: 'T', error: 'e' },
          { kind: 'retrying', id: ids[2]!, token: 'T', runAt: 50, error: 'e' },
        ],
        2,
      );
      await store.cancel(Q, ids[4]!, 3);
      const states = async (query: Parameters<Store['list']>[1], now = 10) =>
        (await store.list(Q, query, now)).items.map((r) => [r.id, r.state]);
      expect(await states({ limit: 100 })).toEqual([
        [ids[0], 'succeeded'],
        [ids[1], 'dead'],
        [ids[2], 'retrying'],
        [ids[3], 'active'],
        [ids[4], 'cancelled'],
        [ids[5], 'pending'],
        [ids[6], 'pending'],
      ]);
      // Keyset pages: `next` is where the following page starts; the last page has none.
      const p1 = await store.list(Q, { limit: 3 }, 10);
      expect(p1.items.map((r) => r.id)).toEqual(ids.slice(0, 3));
      expect(p1.next).toBe(ids[2]);
      const p2 = await store.list(Q, { limit: 3, after: p1.next! }, 10);
      expect(p2.items.map((r) => r.id)).toEqual(ids.slice(3, 6));
      const p3 = await store.list(Q, { limit: 3, after: p2.next! }, 10);
      expect(p3.items.map((r) => r.id)).toEqual(ids.slice(6));
      expect(p3.next).toBeUndefined();
      expect(await states({ limit: 10, state: 'succeeded' })).toEqual([[ids[0], 'succeeded']]);
      expect((await store.list(Q, { limit: 10, state: 'succeeded' }, 10)).items[0]!.result).toBe('1');
      expect(await states({ limit: 10, state: 'cancelled' })).toEqual([[ids[4], 'cancelled']]);
      expect(await states({ limit: 10, state: 'dead' })).toEqual([[ids[1], 'dead']]);
      expect(await states({ limit: 10, state: 'active' })).toEqual([[ids[3], 'active']]);
      // A retrying task past its backoff reads, and filters, as pending.
      expect(await states({ limit: 10, state: 'retrying' }, 10)).toEqual([[ids[2], 'retrying']]);
      expect(await states({ limit: 10, state: 'pending' }, 60)).toEqual([
        [ids[2], 'pending'],
        [ids[5], 'pending'],
        [ids[6], 'pending'],
      ]);
      expect(await states({ limit: 10, key: 'k16' })).toEqual([]);
      expect(await states({ limit: 10, key: 'k15' })).toEqual([[ids[5], 'pending']]);
      expect(await states({ limit: 10, key: 'k00' })).toEqual([[ids[0], 'succeeded']]);
      // No task of this test has a group: a group filter matches none.
      expect(await states({ limit: 10, group: 'g' })).toEqual([]);
    });

    it('lists newest first on request, paging down by id over live and finished tasks, with filters', async () => {
      const ids = (
        await store.enqueue(
          Q,
          Array.from({ length: 7 }, (_, i) => ({ ...task(i, 0, `n${i}`), ...(i % 2 === 0 && { group: 'even' }) })),
          0,
        )
      ).map((r) => r.id);
      await store.enqueue('other', [task('x')], 0);
      const claimed = await store.claim(Q, { limit: 2, now: 1, leaseUntil: 1000, token: 'T' });
      await store.settle(
        Q,
        [
          { kind: 'succeeded', id: claimed[0]!.id, token: 'T', result: '1' },
          { kind: 'dead', id: claimed[1]!.id, token: 'T', error: 'e' },
        ],
        2,
      );
      await store.cancel(Q, ids[5]!, 3);
      const down = [...ids].reverse();
      const page = (query: Omit<Parameters<Store['list']>[1], 'order'>) =>
        store.list(Q, { ...query, order: 'newest' }, 10);
      expect((await page({ limit: 100 })).items.map((r) => r.id)).toEqual(down);
      const p1 = await page({ limit: 3 });
      expect(p1.items.map((r) => r.id)).toEqual(down.slice(0, 3));
      expect(p1.next).toBe(down[2]);
      const p2 = await page({ limit: 3, after: p1.next! });
      expect(p2.items.map((r) => r.id)).toEqual(down.slice(3, 6));
      const p3 = await page({ limit: 3, after: p2.next! });
      expect(p3.items.map((r) => r.id)).toEqual(down.slice(6));
      expect(p3.next).toBeUndefined();
      // The same position pages the other way in the default order: both directions share one cursor shape.
      expect((await store.list(Q, { limit: 2, after: p1.next! }, 10)).items.map((r) => r.id)).toEqual(ids.slice(5, 7));
      // Groups are served fairly, so which two were claimed is the store's choice.
      const [done, dead] = [claimed[0]!.id, claimed[1]!.id];
      const gone = new Set([done, dead, ids[5]]);
      expect((await page({ limit: 10, state: 'pending' })).items.map((r) => r.id)).toEqual(
        down.filter((id) => !gone.has(id)),
      );
      expect((await page({ limit: 10, state: 'cancelled' })).items.map((r) => r.id)).toEqual([ids[5]]);
      expect((await page({ limit: 10, state: 'dead' })).items.map((r) => r.id)).toEqual([dead]);
      expect((await page({ limit: 10, key: `n${ids.indexOf(done)}` })).items.map((r) => [r.id, r.state])).toEqual([
        [done, 'succeeded'],
      ]);
      const even = await page({ limit: 2, group: 'even' });
      expect(even.items.map((r) => r.id)).toEqual([ids[6], ids[4]]);
      expect((await page({ limit: 2, group: 'even', after: even.next! })).items.map((r) => r.id)).toEqual([
        ids[2],
        ids[0],
      ]);
      // A cursor of an id that is gone still pages from where it was.
      expect((await page({ limit: 1, after: String(Number(ids[6]) + 1000) })).items.map((r) => r.id)).toEqual([ids[6]]);
    });

    it('finished tasks keep their priority and group; list filters by group over live and finished tasks', async () => {
      const [a, b, c] = await store.enqueue(
        Q,
        [
          { payload: '"a"', runAt: 0, group: 'u1', priority: 2 },
          { payload: '"b"', runAt: 0, group: 'u2' },
          { payload: '"c"', runAt: 0, group: 'u1', priority: 2 },
        ],
        0,
      );
      // Groups take turns whatever their priority: u1 came first.
      const [first] = await claim(1, 1, 'T');
      expect(first!.id).toBe(a!.id);
      await store.settle(Q, [{ kind: 'succeeded', id: a!.id, token: 'T', result: '1' }], 2);
      expect(await store.cancel(Q, c!.id, 3)).toBe('cancelled');
      expect(await store.get(Q, a!.id, 4)).toMatchObject({ state: 'succeeded', group: 'u1', priority: 2 });
      expect(await store.get(Q, c!.id, 4)).toMatchObject({ state: 'cancelled', group: 'u1', priority: 2 });
      const byGroup = async (group: string) =>
        (await store.list(Q, { limit: 10, group }, 5)).items.map((r) => [r.id, r.state, r.priority ?? 0]);
      expect(await byGroup('u1')).toEqual([
        [a!.id, 'succeeded', 2],
        [c!.id, 'cancelled', 2],
      ]);
      expect(await byGroup('u2')).toEqual([[b!.id, 'pending', 0]]);
      expect(await byGroup('none')).toEqual([]);
    });

    it('prunes finished tasks beyond the kept count, oldest first, in batches', async () => {
      const ids = (
        await store.enqueue(
          Q,
          Array.from({ length: 10 }, (_, i) => task(i)),
          0,
        )
      ).map((r) => r.id);
      const claimed = await store.claim(Q, { limit: 10, now: 1, leaseUntil: 1000, token: 'T' });
      await store.settle(
        Q,
        claimed.map((c, i) =>
          i < 6
            ? { kind: 'succeeded' as const, id: c.id, token: 'T' }
            : { kind: 'dead' as const, id: c.id, token: 'T', error: 'e' },
        ),
        2,
      );
      const keep: Retention = {
        ...keepAll,
        succeeded: { count: 2, ageMs: Number.POSITIVE_INFINITY },
        dead: { count: 1, ageMs: Number.POSITIVE_INFINITY },
      };
      expect(await store.prune(Q, keep, 3, 3)).toBe(3);
      let total = 3;
      for (let n = await store.prune(Q, keep, 3, 3); n > 0; n = await store.prune(Q, keep, 3, 3)) total += n;
      expect(total).toBe(4 + 3);
      const left = (await store.list(Q, { limit: 100 }, 4)).items.map((r) => r.id);
      expect(left).toEqual([ids[4], ids[5], ids[9]]);
      expect(await store.dead(Q)).toHaveLength(1);
      // Stats count every success ever, pruned or not.
      expect((await store.stats(Q, 4)).succeeded).toBe(6);
      // Another queue's history is not touched.
      expect(await store.prune('other', { ...keep, succeeded: { count: 0, ageMs: 0 } }, 4, 100)).toBe(0);
    });

    it('prunes finished tasks older than ageMs whatever the count; keeps live ones', async () => {
      const [a, b, live] = await store.enqueue(Q, [task('a'), task('b'), task('live')], 0);
      const [ta] = await store.claim(Q, { limit: 1, now: 1, leaseUntil: 1000, token: 'A' });
      await store.settle(Q, [{ kind: 'succeeded', id: ta!.id, token: 'A' }], 100);
      await store.cancel(Q, b!.id, 200);
      const keep: Retention = {
        succeeded: { count: 1000, ageMs: 50 },
        dead: { count: 1000, ageMs: 50 },
        cancelled: { count: 1000, ageMs: 50 },
      };
      expect(await store.prune(Q, keep, 149, 100)).toBe(0);
      expect(await store.prune(Q, keep, 151, 100)).toBe(1);
      expect(await store.get(Q, a!.id, 151)).toBeUndefined();
      expect(await store.prune(Q, keep, 251, 100)).toBe(1);
      expect(await store.get(Q, b!.id, 251)).toBeUndefined();
      expect(await store.get(Q, live!.id, 251)).toMatchObject({ state: 'pending' });
      expect(await store.prune(Q, keep, 1_000_000, 100)).toBe(0);
    });
  });

  describe(`queue history on store: ${name}`, () => {
    let rt: Runtime | undefined;
    let cleanup: (() => void | Promise<void>) | undefined;
    let clock: TestClock;
    beforeEach(() => {
      let store: Store;
      ({ store, cleanup } = factory());
      clock = new TestClock(1_000);
      rt = createRuntime({ store, clock });
    });
    afterEach(async () => {
      await rt?.stop();
      await cleanup?.();
    });

    /** Advances the simulated clock in small steps with real waits between them, until `done()`. */
    const until = async (done: () => boolean | Promise<boolean>, stepMs = 10, steps = 100) => {
      for (let i = 0; i < steps && !(await done()); i++) {
        await clock.advance(stepMs);
        await tick();
      }
      expect(await done()).toBe(true);
    };

    it('get(id) answers any task within retention with decoded payload, result and progress', async () => {
      const q = rt!.queue('g', {
        handler: async (t) => {
          t.progress({ step: 1 });
          return { echoed: t.payload };
        },
      });
      await rt!.start();
      const { id } = await q.enqueue({ n: 1 }, { key: 'kk' });
      await drained(q);
      expect(await q.get(id)).toEqual({
        id,
        state: 'succeeded',
        payload: { n: 1 },
        result: { echoed: { n: 1 } },
        progress: { step: 1 },
        attempt: 1,
        key: 'kk',
        createdAt: 1_000,
        startedAt: 1_000,
        finishedAt: 1_000,
      });
      expect(await q.get('424242')).toBeUndefined();
      const page = await q.list({ state: 'succeeded' });
      expect(page.items.map((i) => i.payload)).toEqual([{ n: 1 }]);
    });

    it('a result over 64 KiB is kept as a truncation marker; a result JSON cannot carry is not kept', async () => {
      const q = rt!.queue('big', {
        handler: async (t) => ((t.payload as { big: boolean }).big ? 'x'.repeat(70 * 1024) : new Map()),
      });
      await rt!.start();
      const big = await q.enqueue({ big: true });
      const odd = await q.enqueue({ big: false });
      await drained(q);
      expect((await q.get(big.id))!.result).toEqual({ 'keel.truncated': true, bytes: 70 * 1024 + 2 });
      const rec = await q.get(odd.id);
      expect(rec!.state).toBe('succeeded');
      expect(rec).not.toHaveProperty('result');
    });

    it('cancel: a pending task never runs; a running one sees its signal abort with CANCELLED and is not retried', async () => {
      const events: string[] = [];
      rt!.bus.subscribe('task.c.>', (_p, e) => events.push(e.type));
      let started = 0;
      let reason: unknown;
      const q = rt!.queue('c', {
        concurrency: 1,
        retry: { maxAttempts: 5, initialDelayMs: 1, jitter: false },
        handler: (t) =>
          new Promise((_resolve, reject) => {
            started++;
            t.signal.addEventListener('abort', () => {
              reason = t.signal.reason;
              reject(t.signal.reason);
            });
          }),
      });
      await rt!.start();
      const running = await q.enqueue({ n: 1 });
      const waiting = await q.enqueue({ n: 2 });
      await until(async () => started === 1 && (await q.get(running.id))!.state === 'active');
      expect(await q.cancel(waiting.id)).toBe('cancelled');
      expect(await q.cancel(running.id)).toBe('cancelled');
      expect(reason).toBeInstanceOf(KeelError);
      expect((reason as KeelError).code).toBe('CANCELLED');
      await drained(q);
      await until(() => true);
      expect(started).toBe(1);
      expect(await q.get(running.id)).toMatchObject({ state: 'cancelled', attempt: 1 });
      expect(await q.get(waiting.id)).toMatchObject({ state: 'cancelled', attempt: 0 });
      expect(await q.stats()).toEqual({ pending: 0, active: 0, retrying: 0, succeeded: 0, dead: 0, cancelled: 2 });
      expect(events.sort()).toEqual(['task.c.cancelled', 'task.c.cancelled']);
      expect(await q.cancel(running.id)).toBe('finished');
      expect(await q.cancel('777777')).toBe('not-found');
    });

    it('progress is throttled: the latest value wins, written at most every 250 ms, flushed at settle', async () => {
      const published: unknown[] = [];
      rt!.bus.subscribe('task.pr.progress', (p) => published.push((p as { progress: unknown }).progress));
      let finish: (() => void) | undefined;
      let report: ((v: unknown) => void) | undefined;
      const q = rt!.queue('pr', {
        handler: (t) =>
          new Promise<void>((resolve) => {
            report = (v) => t.progress(v);
            finish = resolve;
          }),
      });
      await rt!.start();
      const { id } = await q.enqueue({});
      await until(() => report !== undefined);
      for (let i = 1; i <= 5; i++) report!(i);
      await tick();
      // The first value goes out at once; the rest wait for their turn and coalesce.
      expect(published).toEqual([1]);
      expect((await q.get(id))!.progress).toBe(1);
      await clock.advance(100);
      await tick();
      expect(published).toEqual([1]);
      await clock.advance(150);
      await until(() => published.length === 2);
      expect(published).toEqual([1, 5]);
      expect((await q.get(id))!.progress).toBe(5);
      report!(6);
      report!({ done: 7 });
      finish!();
      await drained(q);
      expect(published).toEqual([1, 5, { done: 7 }]);
      expect(await q.get(id)).toMatchObject({ state: 'succeeded', progress: { done: 7 } });
      expect(() => report!(new Date())).toThrow(/plain JSON/);
    });

    it("enqueue onDuplicate: 'replace' answers replaced; a bad onDuplicate is INVALID_OPTIONS naming it", async () => {
      const seen: unknown[] = [];
      const q = rt!.queue('rep', { paused: true, handler: async (t) => void seen.push(t.payload) });
      await rt!.start();
      const a = await q.enqueue({ v: 1 }, { key: 'p' });
      const b = await q.enqueue({ v: 2 }, { key: 'p', onDuplicate: 'replace' });
      expect(b).toEqual({ id: a.id, deduplicated: false, replaced: true });
      const c = await q.enqueue({ v: 3 }, { key: 'p', onDuplicate: 'keep' });
      expect(c).toEqual({ id: a.id, deduplicated: true });
      const err = await q.enqueue({ v: 4 }, { key: 'p', onDuplicate: 'merge' as never }).catch((e) => e);
      expect(err).toBeInstanceOf(KeelError);
      expect(err.code).toBe('INVALID_OPTIONS');
      expect(err.message).toMatch(/onDuplicate.*'merge'/);
      q.resume();
      await drained(q);
      expect(seen).toEqual([{ v: 2 }]);
    });

    it('list() pages with next and refuses bad options naming them', async () => {
      const q = rt!.queue('l', { paused: true, handler: async () => {} });
      await rt!.start();
      for (let i = 0; i < 5; i++) await q.enqueue({ i });
      const first = await q.list({ limit: 2 });
      expect(first.items.map((x) => x.payload)).toEqual([{ i: 0 }, { i: 1 }]);
      const second = await q.list({ limit: 2, after: first.next! });
      expect(second.items.map((x) => x.payload)).toEqual([{ i: 2 }, { i: 3 }]);
      const third = await q.list({ limit: 2, after: second.next! });
      expect(third).toEqual({ items: [expect.objectContaining({ payload: { i: 4 }, state: 'pending' })] });
      const latest = await q.list({ limit: 2, order: 'newest' });
      expect(latest.items.map((x) => x.payload)).toEqual([{ i: 4 }, { i: 3 }]);
      expect((await q.list({ limit: 2, order: 'newest', after: latest.next! })).items.map((x) => x.payload)).toEqual([
        { i: 2 },
        { i: 1 },
      ]);
      expect((await q.list({ limit: 1, order: 'oldest' })).items.map((x) => x.payload)).toEqual([{ i: 0 }]);
      for (const [bad, option] of [
        [{ state: 'done' }, 'state'],
        [{ limit: 0 }, 'limit'],
        [{ limit: 5000 }, 'limit'],
        [{ after: 'x' }, 'after'],
        [{ order: 'asc' }, 'order'],
      ] as const) {
        const err = await q.list(bad as never).catch((e) => e);
        expect(err.code).toBe('INVALID_OPTIONS');
        expect(err.message).toContain(`'${option}'`);
      }
    });

    it('the pruner keeps what retention says, in the background', async () => {
      const q = rt!.queue('pr2', {
        handler: async () => {},
        retention: { succeeded: { count: 3 } },
      });
      await rt!.start();
      for (let i = 0; i < 10; i++) await q.enqueue({ i });
      await drained(q);
      expect((await q.list({ state: 'succeeded' })).items).toHaveLength(10);
      await until(async () => (await q.list({ state: 'succeeded' })).items.length === 3, 250, 40);
      const left = (await q.list({ state: 'succeeded' })).items.map((x) => x.payload);
      expect(left).toEqual([{ i: 7 }, { i: 8 }, { i: 9 }]);
      expect((await q.stats()).succeeded).toBe(10);
    });

    it('finished tasks past ageMs are pruned without any later activity', async () => {
      const q = rt!.queue('age', {
        handler: async () => {},
        retention: { succeeded: { ageMs: 5_000 } },
      });
      await rt!.start();
      const a = await q.enqueue({ n: 1 });
      await drained(q);
      expect((await q.get(a.id))!.state).toBe('succeeded');
      // A round soon after the finish deletes nothing (1,000 may be kept for 5 s); the age round does.
      await until(async () => (await q.get(a.id)) === undefined, 250, 40);
      expect(clock.now()).toBeGreaterThanOrEqual(1_000 + 5_000);
    });

    it('retention options are checked: defaults fill what is left out, bad values name the option', () => {
      for (const [bad, option] of [
        [{ succeeded: { count: -1 } }, 'count'],
        [{ dead: { ageMs: 'long' } }, 'retention.dead.ageMs'],
        [{ finished: {} }, 'finished'],
        [{ cancelled: { keep: 1 } }, 'keep'],
        [5, 'retention'],
      ] as const) {
        let err: unknown;
        try {
          rt!.queue(`bad${option}${Math.random()}`, { retention: bad as never });
        } catch (e) {
          err = e;
        }
        expect((err as KeelError).code).toBe('INVALID_OPTIONS');
        expect((err as KeelError).message).toContain(`'${option}'`);
      }
      expect(DEFAULT_RETENTION.succeeded).toEqual({ count: 1000, ageMs: 86_400_000 });
      expect(DEFAULT_RETENTION.dead).toEqual({ count: 10_000, ageMs: 7 * 86_400_000 });
      expect(DEFAULT_RETENTION.cancelled).toEqual({ count: 1000, ageMs: 86_400_000 });
    });
  });
}
