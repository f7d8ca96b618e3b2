import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError, memoryStore, type Runtime, sqliteStore } from '../../src/index.js';
import type { Store } from '../../src/stores/store.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const LEASE = 300;

/** Two stores on the same data: what two processes sharing a store see (no NOTIFY here: the lease renewal finds it). */
const shared: Array<[string, () => { a: Store; b: Store; cleanup: () => void }]> = [
  [
    'memory',
    () => {
      const s = memoryStore();
      return { a: s, b: s, cleanup: () => {} };
    },
  ],
  [
    'sqlite',
    () => {
      const path = `${tempPath('cancel')}.db`;
      return { a: sqliteStore({ path }), b: sqliteStore({ path }), cleanup: () => removeDb(path) };
    },
  ],
];

describe.each(shared)('cancel from another runtime on a shared %s store', (_name, make) => {
  const runtimes: Runtime[] = [];
  let cleanup: (() => void) | undefined;
  afterEach(async () => {
    for (const rt of runtimes.splice(0)) await rt.stop();
    cleanup?.();
  });

  it('the holder learns it at its next lease renewal: its signal aborts with CANCELLED and the task is not retried', async () => {
    const stores = make();
    cleanup = stores.cleanup;
    const clock = new TestClock(1_000);
    const aborted: unknown[] = [];
    let runs = 0;
    const a = createRuntime({ store: stores.a, clock });
    const b = createRuntime({ store: stores.b, clock });
    runtimes.push(a, b);
    const qa = a.queue('x', {
      leaseMs: LEASE,
      retry: { maxAttempts: 3, initialDelayMs: 1, jitter: false },
      handler: (t) =>
        new Promise((_resolve, reject) => {
          runs++;
          t.signal.addEventListener('abort', () => {
            aborted.push(t.signal.reason);
            reject(t.signal.reason);
          });
        }),
    });
    const qb = b.queue('x');
    await a.start();
    await b.start();
    const { id } = await qa.enqueue({ n: 1 });
    for (let i = 0; i < 20 && runs === 0; i++) await settle();
    expect(runs).toBe(1);
    expect(await qb.cancel(id)).toBe('cancelled');
    await settle();
    // Not heard of yet in the runtime that runs it: another runtime cancelled it.
    expect(aborted).toEqual([]);
    await clock.advance(LEASE / 3 + 1);
    for (let i = 0; i < 20 && aborted.length === 0; i++) await settle();
    expect(aborted).toHaveLength(1);
    expect(aborted[0]).toBeInstanceOf(KeelError);
    expect((aborted[0] as KeelError).code).toBe('CANCELLED');
    await clock.advance(LEASE * 3);
    await settle();
    expect(runs).toBe(1);
    expect(await qa.get(id)).toMatchObject({ state: 'cancelled', attempt: 1 });
    expect((await qa.stats()).cancelled).toBe(1);
  });
});
