/**
 * A task its queue's open breaker refused keeps its group's slot (issue #15):
 * with `groupConcurrency: 1`, another process whose breaker is closed does not
 * run the group's next task while the refused one waits out the breaker; it
 * runs them in enqueue order once the wait is over. The refusal spends no
 * attempt. On every store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CircuitOpenError, createRuntime, type Runtime } from '../../src/index.js';
import type { Store } from '../../src/stores/store.js';
import { TestClock } from '../../src/testing/index.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { until } from '../fixtures/wait.js';

const WAIT_MS = 60_000;

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`a breaker deferral on ${kind.name}`, () => {
    const runtimes: Runtime[] = [];
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const rt of runtimes.splice(0)) await rt.stop();
      for (const c of cleanups.splice(0)) await c();
    });

    /** `store` with a count of the claims it answered. */
    function counted(store: Store): { store: Store; claims: () => number } {
      let n = 0;
      const claim = store.claim.bind(store);
      store.claim = async (queue, request) => {
        const got = await claim(queue, request);
        n++;
        return got;
      };
      return { store, claims: () => n };
    }

    it("keeps its group's slot: a later task of the group does not overtake it in another process", async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const t0 = 1_000_000;

      // Process A: its breaker refuses the first task for WAIT_MS.
      const clockA = new TestClock(t0);
      const a = createRuntime({ clock: clockA, store: make(), onError: () => {} });
      runtimes.push(a);
      a.breaker('svc', { callTimeoutMs: 0 });
      const ranA: string[] = [];
      const qa = a.queue('sync', {
        breaker: 'svc',
        groupConcurrency: 1,
        handler: (t) => {
          ranA.push(t.payload as string);
          throw new CircuitOpenError('svc', WAIT_MS);
        },
      });
      await a.start();
      const first = await qa.enqueue('v1', { group: 'u1' });
      await qa.enqueue('v2', { group: 'u1' });
      await until(
        async () => ranA.length > 0 && (await qa.get(first.id))?.state !== 'active',
        10_000,
        'the refused task to be settled',
      );
      expect(ranA).toEqual(['v1']);
      expect(await qa.get(first.id)).toMatchObject({ attempt: 0, group: 'u1' });
      await a.stop();

      // Process B: its breaker is closed. It claims at once, and must not take v2 past v1.
      const clockB = new TestClock(t0 + 1);
      const b = counted(make());
      const rtB = createRuntime({ clock: clockB, store: b.store, onError: () => {} });
      runtimes.push(rtB);
      rtB.breaker('svc', { callTimeoutMs: 0 });
      const ranB: string[] = [];
      const qb = rtB.queue('sync', {
        breaker: 'svc',
        groupConcurrency: 1,
        handler: (t) => void ranB.push(t.payload as string),
      });
      await rtB.start();
      await until(() => b.claims() > 0, 10_000, "B's first claim");
      expect(ranB).toEqual([]);
      expect((await qb.stats()).pending).toBe(1);

      // The wait is over: v1 runs first, then v2.
      await clockB.advance(WAIT_MS);
      await until(() => ranB.length === 2, 10_000, 'both tasks in B');
      expect(ranB).toEqual(['v1', 'v2']);
      expect(await qb.get(first.id)).toMatchObject({ state: 'succeeded', attempt: 1 });
    });

    it('the store keeps a deferred task retrying until its time, its attempt given back and its last error kept', async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const store = make();
      await store.open();
      try {
        const limits = { groupConcurrency: 1 };
        const claim = (now: number) =>
          store.claim('q', { limit: 5, now, leaseUntil: now + 1000, token: `t${now}`, limits });
        const [first] = await store.enqueue('q', [{ payload: '1', runAt: 0, group: 'g' }], 0);
        const [t1] = await claim(1);
        await store.settle('q', [{ kind: 'retrying', id: t1!.id, token: t1!.token, runAt: 1, error: 'boom' }], 1);
        const [t2] = await claim(2);
        expect(t2).toMatchObject({ id: first!.id, attempt: 2 });
        expect(await store.settle('q', [{ kind: 'deferred', id: t2!.id, token: t2!.token, runAt: 100 }], 2)).toEqual([
          true,
        ]);
        expect(await store.get('q', first!.id, 3)).toMatchObject({
          state: 'retrying',
          attempt: 1,
          runAt: 100,
          lastError: 'boom',
        });
        await store.enqueue('q', [{ payload: '2', runAt: 3, group: 'g' }], 3);
        expect(await claim(4)).toEqual([]);
        const [again] = await claim(100);
        expect(again).toMatchObject({ id: first!.id, attempt: 2 });
      } finally {
        await store.close();
      }
    });
  });
}
