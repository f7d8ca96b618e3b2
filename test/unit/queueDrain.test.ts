import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, memoryStore, type Runtime } from '../../src/index.js';
import { TestClock } from '../../src/testing/index.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';

/** Issue #12, point 6: `drain()` covers every enqueue called before it, also in the same turn. */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`drain (${kind.name})`, () => {
    it('waits for the enqueues of its own turn, not yet written when it is called', async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const rt: Runtime = createRuntime({ store: make(), onError: () => {} });
      cleanups.push(() => rt.stop());
      const done: number[] = [];
      const q = rt.queue('drain', { concurrency: 4, handler: (t) => void done.push(t.payload as number) });
      await rt.start();
      const enqueued = [q.enqueue(1), q.enqueue(2), q.enqueue(3)];
      // Same turn: the three enqueues still wait in the batcher.
      await q.drain();
      expect(done.sort()).toEqual([1, 2, 3]);
      expect(await q.stats()).toMatchObject({ pending: 0, active: 0, succeeded: 3 });
      await Promise.all(enqueued);
    });

    it('a failed enqueue of its turn does not make it reject or hang', async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const rt: Runtime = createRuntime({ store: make(), onError: () => {} });
      cleanups.push(() => rt.stop());
      const q = rt.queue('drain', { handler: () => {} });
      await rt.start();
      const bad = expect(q.enqueue(1n as never)).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
      const good = expect(q.enqueue(2)).resolves.toMatchObject({ deduplicated: false });
      await q.drain();
      await bad;
      await good;
      expect(await q.stats()).toMatchObject({ succeeded: 1 });
    });
  });
}

describe('drain on a shared store', () => {
  it('a task claimed, run and settled while drain reads the counts does not leave it waiting for nothing', async () => {
    // A store another process also works: watchable, so drain sleeps on the runtime clock between looks;
    // with a test clock that never moves, only a change this process sees can wake it.
    const inner = memoryStore();
    const wakes = new Map<string, () => void>();
    let slowStats = true;
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'watch') {
          return (queue: string, onWake: () => void) => {
            wakes.set(queue, onWake);
            return () => wakes.delete(queue);
          };
        }
        if (prop === 'stats') {
          return async (queue: string, now: number) => {
            const counts = await target.stats(queue, now);
            if (slowStats) {
              slowStats = false;
              // While the counts are on their way: "another process's" task is announced, claimed, run, settled.
              wakes.get(queue)?.();
              await new Promise((r) => setTimeout(r, 100));
            }
            return counts;
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    const rt = createRuntime({ store, clock: new TestClock(1_000), onError: () => {} });
    cleanups.push(() => rt.stop());
    const done: unknown[] = [];
    const q = rt.queue('shared', { handler: (t) => void done.push(t.payload) });
    await rt.start();
    // The start's first claim round has found nothing and ended.
    await new Promise((r) => setTimeout(r, 50));
    // Written by "another process": this runtime hears of it only through the watch.
    await inner.enqueue('shared', [{ payload: '"elsewhere"', runAt: 0 }], 1_000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      q.drain().then(() => 'drained'),
      new Promise((r) => {
        timer = setTimeout(() => r('hung'), 3_000);
      }),
    ]);
    clearTimeout(timer);
    expect(outcome).toBe('drained');
    expect(done).toEqual(['elsewhere']);
  });
});
