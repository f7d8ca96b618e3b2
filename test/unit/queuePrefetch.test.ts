import { afterEach, describe, expect, it } from 'vitest';
import { PREFETCH_WINDOW_MS } from '../../src/actors/queue/engine.js';
import { createRuntime, memoryStore, type Runtime } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { type Deferred, deferred } from '../fixtures/deferred.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { sleep, until } from '../fixtures/wait.js';

/**
 * Issue #12, point 7: a process leases only what it can start soon. Beyond its
 * free workers it claims only what its handlers are measured to finish within
 * `PREFETCH_WINDOW_MS`.
 */

const cleanups: Array<() => Promise<void>> = [];
const open: Deferred[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) d.resolve();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A handler that runs until the test ends it. */
function slowHandler(running: string[]) {
  return (t: { payload: unknown }) => {
    running.push(String(t.payload));
    const d = deferred();
    open.push(d);
    return d.promise;
  };
}

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`prefetch with slow handlers (${kind.name})`, () => {
    it('two runtimes on one store with concurrency 1: both run a task; active counts only running ones', async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const runningA: string[] = [];
      const runningB: string[] = [];
      const a: Runtime = createRuntime({ store: make(), onError: () => {} });
      cleanups.push(() => a.stop());
      const qa = a.queue('slow', { concurrency: 1, pollMs: 20, handler: slowHandler(runningA) });
      await a.start();
      await qa.enqueue('t1');
      await qa.enqueue('t2');
      await qa.enqueue('t3');
      await until(() => runningA.length === 1, 5000, 'A runs a task');
      await sleep(30);
      // A holds the one it runs, not the waiting ones.
      expect(await qa.stats()).toMatchObject({ active: 1, pending: 2 });

      const b: Runtime = createRuntime({ store: make(), onError: () => {} });
      cleanups.push(() => b.stop());
      b.queue('slow', { concurrency: 1, pollMs: 20, handler: slowHandler(runningB) });
      await b.start();
      await until(() => runningB.length === 1, 5000, 'B runs a task');
      await sleep(30);
      expect(runningA).toHaveLength(1);
      expect(await qa.stats()).toMatchObject({ active: 2, pending: 1 });
      expect(new Set([...runningA, ...runningB]).size).toBe(2);
    });
  });
}

describe('adaptive prefetch (simulated time)', () => {
  const runtimes: Array<{ rt: Runtime; clock: TestClock }> = [];
  afterEach(async () => {
    for (const { rt, clock } of runtimes.splice(0)) {
      const stopped = rt.stop().catch(() => {});
      await clock.advance(60_000);
      await stopped;
    }
  });

  function counted() {
    const inner = memoryStore();
    const limits: number[] = [];
    const store = Object.create(inner) as typeof inner;
    store.claim = async (queue, request) => {
      limits.push(request.limit);
      return inner.claim(queue, request);
    };
    return { store, limits };
  }

  it('fast handlers keep claiming a batch per store call', async () => {
    const { store, limits } = counted();
    const clock = new TestClock(0);
    const rt = createRuntime({ store, clock, onError: () => {} });
    runtimes.push({ rt, clock });
    const q = rt.queue('fast', { concurrency: 2, batchSize: 16, handler: () => {} });
    await rt.start();
    await Promise.all(Array.from({ length: 100 }, (_, i) => q.enqueue(i)));
    await settle(10);
    expect(await q.stats()).toMatchObject({ succeeded: 100 });
    // The first round knows no pace yet (just the free workers); then the full batch.
    expect(limits[0]).toBe(2);
    expect(Math.max(...limits)).toBe(2 + 16);
  });

  it('handlers slower than the window hold leases only on what runs; the pace is measured, not assumed', async () => {
    const clock = new TestClock(0);
    const rt = createRuntime({ clock, onError: () => {} });
    runtimes.push({ rt, clock });
    // Two workers at this pace finish half a task per window: nothing is claimed ahead.
    const ms = 4 * PREFETCH_WINDOW_MS;
    const running: number[] = [];
    const q = rt.queue('slow', {
      concurrency: 2,
      handler: async (t) => {
        running.push(t.payload as number);
        await new Promise((r) => clock.setTimeout(r, ms));
      },
    });
    await rt.start();
    await Promise.all(Array.from({ length: 8 }, (_, i) => q.enqueue(i)));
    await settle();
    for (let step = 0; step < 3; step++) {
      expect(await q.stats()).toMatchObject({ active: 2 });
      await clock.advance(ms);
    }
    // Handlers as long as the window: two workers finish two in it, so two are claimed ahead.
    const fast = rt.queue('half', {
      concurrency: 2,
      handler: async () => {
        await new Promise((r) => clock.setTimeout(r, PREFETCH_WINDOW_MS));
      },
    });
    await Promise.all(Array.from({ length: 8 }, (_, i) => fast.enqueue(i)));
    await settle();
    await clock.advance(PREFETCH_WINDOW_MS);
    await clock.advance(PREFETCH_WINDOW_MS);
    expect(await fast.stats()).toMatchObject({ active: 2 + 2 });
  });
});
