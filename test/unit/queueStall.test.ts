import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
import type { Task } from '../../src/runtime/queues.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { sleep } from '../fixtures/wait.js';

/**
 * Issue #12, point 5: an event-loop stall longer than `leaseMs` (a CPU-bound
 * handler) is not a lost lease. Real time, since a stall is the event loop
 * not running: no simulated clock can stand in for it.
 */

const LEASE_MS = 60;
const STALL_MS = 4 * LEASE_MS;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Busy-waits: nothing else in this process runs meanwhile. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
}

interface Record {
  /** Runs of each task (by payload name) still going. */
  running: Map<string, number>;
  /** Most runs of one task seen at once. */
  overlaps: string[];
  /** Runs that started after the task had already returned successfully. */
  rerunsAfterSuccess: string[];
  starts: string[];
  aborted: string[];
}

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`a stall longer than leaseMs (${kind.name})`, () => {
    it('never runs one task twice at once, nor again after it succeeded', { timeout: 20_000 }, async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const rec: Record = { running: new Map(), overlaps: [], rerunsAfterSuccess: [], starts: [], aborted: [] };
      const succeeded = new Set<string>();
      const errors: unknown[] = [];
      const rt: Runtime = createRuntime({ store: make(), onError: (e) => errors.push(e) });
      cleanups.push(() => rt.stop());
      const q = rt.queue('stall', {
        concurrency: 2,
        leaseMs: LEASE_MS,
        // Shorter than the stall: today's claim round after it reaps this process's own leases.
        pollMs: LEASE_MS,
        handler: async (task: Task<{ name: string }>) => {
          const { name } = task.payload;
          rec.starts.push(name);
          if (succeeded.has(name)) {
            // Recorded, and not stalled again: today's engine would otherwise loop on it for ever.
            rec.rerunsAfterSuccess.push(name);
            return;
          }
          const now = (rec.running.get(name) ?? 0) + 1;
          rec.running.set(name, now);
          if (now > 1) rec.overlaps.push(name);
          task.signal.addEventListener('abort', () => rec.aborted.push(name));
          try {
            if (name === 'cpu') stall(STALL_MS);
            // An I/O-bound task that ignores its signal: it stays running through the stall and after it.
            else await sleep(STALL_MS * 2);
          } finally {
            rec.running.set(name, rec.running.get(name)! - 1);
          }
          succeeded.add(name);
        },
      });
      await rt.start();
      // `io` first, so it is running on the other worker when `cpu` stalls the process.
      await q.enqueue({ name: 'io' });
      await sleep(5);
      await q.enqueue({ name: 'cpu' });
      await q.drain();

      expect(rec.overlaps, 'tasks run twice at once').toEqual([]);
      expect(rec.rerunsAfterSuccess, 'tasks run again after they succeeded').toEqual([]);
      expect(rec.starts.sort()).toEqual(['cpu', 'io']);
      // The stall cost no lease: nothing was aborted as lost.
      expect(rec.aborted).toEqual([]);
      expect(await q.stats()).toMatchObject({ pending: 0, active: 0, retrying: 0, succeeded: 2, dead: 0 });
    });
  });
}
