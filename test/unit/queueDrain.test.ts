import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
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
