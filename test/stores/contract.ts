import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nextTaskState } from '../../src/actors/queue/lifecycle.js';
import { createRuntime, KeelError, type Runtime } from '../../src/index.js';
import type { Store } from '../../src/stores/store.js';
import { TestClock } from '../../src/testing/index.js';
import { claimContract } from './claimContract.js';

/** Makes a fresh, unopened store; `cleanup` removes whatever it left behind. */
export type StoreFactory = () => { store: Store; cleanup?: () => void | Promise<void> };

/** Opens a fresh store from `factory` before each test and closes and cleans it after; read it with the getter. */
export function openedStore(factory: StoreFactory): () => Store {
  let store: Store;
  let cleanup: (() => void | Promise<void>) | undefined;
  beforeEach(async () => {
    ({ store, cleanup } = factory());
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    await cleanup?.();
  });
  return () => store;
}

const Q = 'q';
const task = (payload: unknown, runAt = 0, key?: string) => ({
  payload: JSON.stringify(payload),
  runAt,
  ...(key !== undefined && { key }),
});

/**
 * The one contract every store passes: the task transitions of
 * `src/machines/task.ts`, lease tokens, dedup keys, counts. Run from
 * `test/stores/<store>.test.ts` with a factory.
 */
export function storeContract(name: string, factory: StoreFactory): void {
  claimContract(name, factory);
  describe(`store contract: ${name}`, () => {
    const opened = openedStore(factory);
    let store: Store;
    beforeEach(() => {
      store = opened();
    });

    const claim = (now: number, limit = 10, token = `t${now}`) =>
      store.claim(Q, { limit, now, leaseUntil: now + 1000, token });

    it('open and close are safe to call twice', async () => {
      await store.open();
      await store.close();
      await store.close();
      await store.open();
      expect(await store.stats(Q, 0)).toEqual({
        pending: 0,
        active: 0,
        retrying: 0,
        succeeded: 0,
        dead: 0,
        cancelled: 0,
      });
    });

    it('claims due tasks oldest runAt first, counting an attempt, and never hands a task out twice', async () => {
      const [a, b, c] = await store.enqueue(Q, [task('a', 20), task('b', 10), task('c', 500)], 0);
      expect([a, b, c].map((r) => r!.deduplicated)).toEqual([false, false, false]);
      expect(new Set([a!.id, b!.id, c!.id]).size).toBe(3);
      expect(await claim(5)).toEqual([]);
      const got = await claim(100);
      expect(got.map((t) => JSON.parse(t.payload))).toEqual(['b', 'a']);
      expect(got.map((t) => t.attempt)).toEqual([1, 1]);
      expect(got.every((t) => t.token === 't100')).toBe(true);
      expect(await claim(200)).toEqual([]);
      expect(await store.stats(Q, 200)).toMatchObject({ pending: 1, active: 2 });
    });

    it('never reuses an id, even after the newest task succeeded and is gone', async () => {
      const [a] = await store.enqueue(Q, [task('a')], 0);
      const [t] = await claim(0);
      await store.settle(Q, [{ kind: 'succeeded', id: t!.id, token: t!.token }], 1);
      const [b] = await store.enqueue(Q, [task('b')], 2);
      expect(b!.id).not.toBe(a!.id);
    });

    it('respects the claim limit', async () => {
      await store.enqueue(Q, [task(1), task(2), task(3)], 0);
      expect(await claim(0, 2)).toHaveLength(2);
      expect(await claim(0, 2)).toHaveLength(1);
    });

    it('keeps queues apart', async () => {
      await store.enqueue('other', [task('x')], 0);
      expect(await claim(0)).toEqual([]);
      expect((await store.stats('other', 0)).pending).toBe(1);
    });

    it('dedups a key while its task is pending, active or retrying; frees it on success or death', async () => {
      const [first] = await store.enqueue(Q, [task(1, 0, 'k')], 0);
      const [again] = await store.enqueue(Q, [task(2, 0, 'k')], 0);
      expect(again).toEqual({ id: first!.id, deduplicated: true });
      // within one batch too
      const both = await store.enqueue(Q, [task(3, 0, 'j'), task(4, 0, 'j')], 0);
      expect(both[1]).toEqual({ id: both[0]!.id, deduplicated: true });
      const [t] = await claim(0, 1);
      expect((await store.enqueue(Q, [task(5, 0, 'k')], 0))[0]!.deduplicated).toBe(true);
      await store.settle(Q, [{ kind: 'retrying', id: t!.id, token: t!.token, runAt: 50, error: 'e' }], 1);
      expect((await store.enqueue(Q, [task(6, 0, 'k')], 1))[0]!.deduplicated).toBe(true);
      const later = await claim(50);
      const t2 = later.find((x) => x.id === t!.id);
      expect(t2!.attempt).toBe(2);
      await store.settle(Q, [{ kind: 'succeeded', id: t2!.id, token: t2!.token }], 51);
      const [fresh] = await store.enqueue(Q, [task(7, 0, 'k')], 52);
      expect(fresh!.deduplicated).toBe(false);
      expect(fresh!.id).not.toBe(first!.id);
      const t3 = later.find((x) => x.key === 'j');
      expect(t3).toBeDefined();
      await store.settle(Q, [{ kind: 'dead', id: t3!.id, token: t3!.token, error: 'boom' }], 61);
      expect((await store.enqueue(Q, [task(8, 0, 'j')], 62))[0]!.deduplicated).toBe(false);
    });

    it('settles only with the lease token of the current claim', async () => {
      await store.enqueue(Q, [task('x')], 0);
      const [t] = await claim(0);
      expect(await store.settle(Q, [{ kind: 'succeeded', id: t!.id, token: 'stale' }], 1)).toEqual([false]);
      expect(await store.settle(Q, [{ kind: 'succeeded', id: t!.id, token: t!.token }], 1)).toEqual([true]);
      expect(await store.settle(Q, [{ kind: 'succeeded', id: t!.id, token: t!.token }], 2)).toEqual([false]);
      // A succeeded task is kept (task history), with when it finished.
      expect(await store.get(Q, t!.id, 2)).toMatchObject({
        state: 'succeeded',
        attempt: 1,
        finishedAt: 1,
        startedAt: 0,
      });
      expect(await store.stats(Q, 2)).toEqual({
        pending: 0,
        active: 0,
        retrying: 0,
        succeeded: 1,
        dead: 0,
        cancelled: 0,
      });
    });

    it('a retrying task waits out its backoff, then reads and claims as pending with the next attempt', async () => {
      await store.enqueue(Q, [task('x')], 0);
      const [t] = await claim(0);
      await store.settle(Q, [{ kind: 'retrying', id: t!.id, token: t!.token, runAt: 100, error: 'Error: down' }], 10);
      expect(await store.stats(Q, 50)).toMatchObject({ pending: 0, retrying: 1, active: 0 });
      expect(await store.get(Q, t!.id, 50)).toMatchObject({ state: 'retrying', lastError: 'Error: down', attempt: 1 });
      expect(await claim(99)).toEqual([]);
      expect(await store.nextDueAt(Q)).toBe(100);
      expect(await store.stats(Q, 100)).toMatchObject({ pending: 1, retrying: 0 });
      expect((await store.get(Q, t!.id, 100))!.state).toBe('pending');
      const [again] = await claim(100);
      expect(again!.attempt).toBe(2);
    });

    it('a released task goes back to pending without spending its attempt', async () => {
      await store.enqueue(Q, [task('x')], 0);
      const [t] = await claim(0);
      expect(await store.settle(Q, [{ kind: 'released', id: t!.id, token: t!.token, runAt: 30 }], 1)).toEqual([true]);
      expect(await store.get(Q, t!.id, 1)).toMatchObject({ state: 'pending', attempt: 0, runAt: 30 });
      expect(await claim(29)).toEqual([]);
      expect((await claim(30))[0]!.attempt).toBe(1);
    });

    it('settles a batch in one call, each outcome on its own', async () => {
      await store.enqueue(Q, [task(1), task(2), task(3)], 0);
      const [a, b, c] = await claim(0);
      const ok = await store.settle(
        Q,
        [
          { kind: 'succeeded', id: a!.id, token: a!.token },
          { kind: 'dead', id: b!.id, token: 'wrong', error: 'x' },
          { kind: 'dead', id: c!.id, token: c!.token, error: 'NonRetryableError: no' },
        ],
        5,
      );
      expect(ok).toEqual([true, false, true]);
      expect(await store.stats(Q, 5)).toEqual({
        pending: 0,
        active: 1,
        retrying: 0,
        succeeded: 1,
        dead: 1,
        cancelled: 0,
      });
    });

    it('expires leases as the task machine says: pending with attempts left, dead without', async () => {
      await store.enqueue(Q, [task('a'), task('b')], 0);
      const [a, b] = await claim(0); // leases until 1000, attempt 1
      await store.settle(Q, [{ kind: 'released', id: b!.id, token: b!.token, runAt: 0 }], 1);
      const [b2] = await claim(2); // b: attempt 1 again, lease until 1002
      expect(b2!.id).toBe(b!.id);
      expect(await store.expireLeases(Q, 999, 1)).toEqual([]);
      expect(await store.nextDueAt(Q)).toBe(1000);
      const expired = await store.expireLeases(Q, 1000, 2);
      expect(expired).toEqual([{ id: a!.id, state: nextTaskState('active', { type: 'leaseExpired' }, 1, 2) }]);
      expect(expired[0]!.state).toBe('pending');
      const dead = await store.expireLeases(Q, 1002, 1);
      expect(dead).toEqual([{ id: b!.id, state: nextTaskState('active', { type: 'leaseExpired' }, 1, 1) }]);
      expect(dead[0]!.state).toBe('dead');
      expect(await store.settle(Q, [{ kind: 'succeeded', id: a!.id, token: a!.token }], 1003)).toEqual([false]);
      const [again] = await claim(1003);
      expect(again).toMatchObject({ id: a!.id, attempt: 2 });
      expect((await store.dead(Q))[0]).toMatchObject({ id: b!.id, lastError: 'lease expired on attempt 1' });
    });

    it('renews leases still held and reports the lost ones', async () => {
      await store.enqueue(Q, [task('a'), task('b')], 0);
      const [a, b] = await claim(0);
      const lost = await store.renew(
        Q,
        [
          { id: a!.id, token: a!.token },
          { id: b!.id, token: 'other' },
        ],
        5000,
        900,
      );
      expect(lost).toEqual([b!.id]);
      expect((await store.expireLeases(Q, 1000, 5)).map((e) => e.id)).toEqual([b!.id]);
      expect(await store.get(Q, a!.id, 1000)).toMatchObject({ state: 'active', leaseUntil: 5000 });
      expect(await store.renew(Q, [{ id: b!.id, token: b!.token }], 6000, 1001)).toEqual([b!.id]);
    });

    it('lists dead tasks and redrives them with attempts reset', async () => {
      await store.enqueue(Q, [task({ n: 1 }, 0, 'k')], 0);
      const [t] = await claim(0);
      await store.settle(Q, [{ kind: 'dead', id: t!.id, token: t!.token, error: 'Error: gone' }], 3);
      const dead = await store.dead(Q);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ id: t!.id, state: 'dead', key: 'k', attempt: 1, lastError: 'Error: gone' });
      expect(JSON.parse(dead[0]!.payload)).toEqual({ n: 1 });
      // a live task holding the key blocks the redrive
      const [live] = await store.enqueue(Q, [task({ n: 2 }, 0, 'k')], 4);
      expect(await store.redrive(Q, t!.id, 5)).toBe('deduplicated');
      const [l] = await claim(5);
      expect(l!.id).toBe(live!.id);
      await store.settle(Q, [{ kind: 'succeeded', id: l!.id, token: l!.token }], 6);
      expect(await store.redrive(Q, t!.id, 7)).toBe('redriven');
      expect(await store.redrive(Q, t!.id, 7)).toBe('not-found');
      expect(await store.redrive(Q, 'nope', 7)).toBe('not-found');
      expect(await store.get(Q, t!.id, 7)).toMatchObject({ state: 'pending', attempt: 0 });
      expect((await store.enqueue(Q, [task(0, 0, 'k')], 8))[0]).toEqual({ id: t!.id, deduplicated: true });
      expect((await claim(8))[0]).toMatchObject({ id: t!.id, attempt: 1 });
      expect(await store.dead(Q)).toEqual([]);
    });

    it('answers nextDueAt from the earliest due task or lease', async () => {
      expect(await store.nextDueAt(Q)).toBeUndefined();
      await store.enqueue(Q, [task('a', 300), task('b', 200)], 0);
      expect(await store.nextDueAt(Q)).toBe(200);
      await claim(250); // b leased until 1250
      expect(await store.nextDueAt(Q)).toBe(300);
      await claim(300); // a leased until 1300
      expect(await store.nextDueAt(Q)).toBe(1250);
    });

    it('keeps payload text exactly', async () => {
      const payload = { s: 'ünï©ødé "quoted" \n', n: -1.5e-7, a: [null, true, { deep: [1] }] };
      await store.enqueue(Q, [task(payload)], 0);
      const [t] = await claim(0);
      expect(JSON.parse(t!.payload)).toEqual(payload);
    });

    it('hands the trace context of a task back unchanged with every claim; a task enqueued without one has none', async () => {
      const trace = JSON.stringify({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
      const [traced, plain] = await store.enqueue(Q, [{ ...task('t'), trace }, task('p')], 0);
      const first = await claim(0);
      expect(first.find((t) => t.id === traced!.id)?.trace).toBe(trace);
      expect(first.find((t) => t.id === plain!.id)).not.toHaveProperty('trace');
      // The next attempt (after a retry) still carries it.
      const token = first.find((t) => t.id === traced!.id)!.token;
      await store.settle(Q, [{ kind: 'retrying', id: traced!.id, token, runAt: 10, error: 'e' }], 1);
      const [again] = await claim(10);
      expect(again).toMatchObject({ id: traced!.id, attempt: 2, trace });
    });
  });

  describe(`queue on store: ${name}`, () => {
    let rt: Runtime | undefined;
    let cleanup: (() => void | Promise<void>) | undefined;
    let store: Store;
    let clock: TestClock;
    beforeEach(() => {
      ({ store, cleanup } = factory());
      clock = new TestClock(1_000);
      rt = createRuntime({ store, clock });
    });
    afterEach(async () => {
      await rt?.stop();
      await cleanup?.();
    });

    it('a bad enqueue fails alone: its neighbours in the same store call are written (issue #12.8)', async () => {
      const q = rt!.queue('alone', { handler: async () => {}, paused: true });
      await rt!.start();
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e) => (e instanceof KeelError ? e.code : `raw ${e}`),
        );
      // All in one turn: one store call would carry them together.
      const results = await Promise.all([
        code(q.enqueue({ n: 1 })),
        code(q.enqueue({ n: 2 }, { key: 'a\u0000b' })),
        code(q.enqueue({ n: 3 }, { key: '\uD800' })),
        code(q.enqueue({ n: 4 }, { key: 'x\uDC00y' })),
        code(q.enqueue({ n: 5 }, { delayMs: 1e300 })),
        code(q.enqueue({ n: 6 }, { delayMs: 2.5 })),
        code(q.enqueue({ text: 'nul \u0000 inside', lone: '\uD800' })),
        code(q.enqueue({ n: 8 }, { key: 'k', priority: 1.5 })),
        code(q.enqueue({ n: 9 }, { key: 'emoji \uD83D\uDE00' })),
      ]);
      expect(results).toEqual([
        'ok',
        'INVALID_OPTIONS',
        'INVALID_OPTIONS',
        'INVALID_OPTIONS',
        'INVALID_OPTIONS',
        'ok',
        'ok',
        'INVALID_OPTIONS',
        'ok',
      ]);
      expect((await q.stats()).pending).toBe(4);
    });

    it('refuses a payload that is not JSON with INVALID_PAYLOAD and writes nothing', async () => {
      const q = rt!.queue('p', { handler: async () => {} });
      q.pause();
      await rt!.start();
      q.pause();
      const bad: unknown[] = [
        undefined,
        () => 1,
        Symbol('s'),
        10n,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        new Date(0),
        new Map(),
        { nested: { when: new Date(0) } },
        [1, undefined],
        { f: () => {} },
      ];
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      bad.push(cyclic);
      for (const payload of bad) {
        const err = await q.enqueue(payload).catch((e) => e);
        expect(err).toBeInstanceOf(KeelError);
        expect(err.code).toBe('INVALID_PAYLOAD');
        expect(err.message).toContain("queue('p')");
      }
      const good = q.enqueue({ ok: 1 });
      const bad2 = q.enqueue({ date: new Date() }).catch((e) => e.code);
      expect(await bad2).toBe('INVALID_PAYLOAD');
      await good;
      expect(await q.stats()).toEqual({ pending: 1, active: 0, retrying: 0, succeeded: 0, dead: 0, cancelled: 0 });
    });

    it('enqueue before rt.start() rejects with NOT_STARTED and writes nothing; while starting it waits', async () => {
      const seen: unknown[] = [];
      const q = rt!.queue('s', { handler: async (t) => void seen.push(t.payload) });
      const err = await q.enqueue({ n: 1 }).catch((e) => e);
      expect(err).toBeInstanceOf(KeelError);
      expect(err.code).toBe('NOT_STARTED');
      const starting = rt!.start();
      const r = await q.enqueue({ n: 2 });
      await starting;
      expect(r.deduplicated).toBe(false);
      await q.drain();
      expect(seen).toEqual([{ n: 2 }]);
      expect(await q.stats()).toMatchObject({ succeeded: 1, pending: 0 });
    });

    it('runs tasks to success and dead-letters after maxAttempts, announcing both on the bus', async () => {
      const events: string[] = [];
      rt!.bus.subscribe('task.r.>', (_p, e) => events.push(e.type));
      const q = rt!.queue('r', {
        handler: async (t) => {
          if ((t.payload as { fail: boolean }).fail) throw new Error('no');
        },
        retry: { maxAttempts: 2, initialDelayMs: 10, jitter: false },
      });
      await rt!.start();
      await q.enqueue({ fail: false });
      const { id } = await q.enqueue({ fail: true });
      let drained = false;
      const draining = q.drain().then(() => (drained = true));
      // Small steps with real waits between them: a networked store (postgres) answers in real time, not in a turn.
      for (let t = 0; t < 100 && !drained; t += 10) {
        await clock.advance(10);
        await new Promise((r) => setTimeout(r, 20));
      }
      await draining;
      expect(events.sort()).toEqual(['task.r.dead', 'task.r.retrying', 'task.r.succeeded']);
      const dead = await q.dead();
      expect(dead).toEqual([expect.objectContaining({ id, payload: { fail: true }, attempt: 2, error: 'Error: no' })]);
      expect(await q.stats()).toEqual({ pending: 0, active: 0, retrying: 0, succeeded: 1, dead: 1, cancelled: 0 });
    });
  });
}
