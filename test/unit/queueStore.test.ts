import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError, memoryStore, type Runtime } from '../../src/index.js';
import type { Store } from '../../src/stores/store.js';
import { settle, TestClock } from '../../src/testing/index.js';

/** A memory store whose calls are counted and can be made to fail. */
function flakyStore() {
  const inner = memoryStore();
  const calls: Record<string, number> = {};
  const failNext: Record<string, number> = {};
  const store = { ...inner } as Store;
  for (const method of ['enqueue', 'claim', 'settle', 'renew'] as const) {
    const original = inner[method].bind(inner) as (...args: unknown[]) => Promise<unknown>;
    (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      calls[method] = (calls[method] ?? 0) + 1;
      if ((failNext[method] ?? 0) > 0) {
        failNext[method]!--;
        throw new KeelError('STORE_UNAVAILABLE', `${method} failed (test)`);
      }
      return original(...args);
    };
  }
  return { store, calls, failNext };
}

describe('queue and its store', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  it('enqueues of one turn share one store call', async () => {
    const { store, calls } = flakyStore();
    rt = createRuntime({ store, clock: new TestClock() });
    const q = rt.queue('q');
    await rt.start();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => q.enqueue({ i }, { key: `k${i % 10}` })));
    expect(calls.enqueue).toBe(1);
    expect(results.filter((r) => !r.deduplicated)).toHaveLength(10);
    // Later duplicates point at the first task with their key.
    expect(results[10]!.id).toBe(results[0]!.id);
  });

  it('a failed enqueue rejects every caller of that batch and stores nothing', async () => {
    const { store, failNext } = flakyStore();
    rt = createRuntime({ store, clock: new TestClock() });
    const q = rt.queue('q');
    await rt.start();
    failNext.enqueue = 1;
    const settled = await Promise.allSettled([q.enqueue(1), q.enqueue(2)]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect((await q.stats()).pending).toBe(0);
  });

  it('when storing an outcome fails, the task is not lost: its lease runs out and it runs again', async () => {
    const { store, failNext } = flakyStore();
    const clock = new TestClock();
    const errors: unknown[] = [];
    rt = createRuntime({ store, clock, onError: (e) => errors.push(e) });
    const attempts: number[] = [];
    const q = rt.queue('q', { leaseMs: 300, handler: async (t) => void attempts.push(t.attempt) });
    await rt.start();
    failNext.settle = 1;
    await q.enqueue('x');
    await settle();
    expect(errors).toHaveLength(1);
    expect(await q.stats()).toMatchObject({ active: 1, succeeded: 0 });
    await clock.advance(1500);
    await q.drain();
    expect(attempts).toEqual([1, 2]);
    expect(await q.stats()).toMatchObject({ active: 0, succeeded: 1 });
  });

  it('when claiming fails, it reports and tries again after pollMs', async () => {
    const { store, failNext } = flakyStore();
    const clock = new TestClock();
    const errors: unknown[] = [];
    rt = createRuntime({ store, clock, onError: (e) => errors.push(e) });
    const seen: unknown[] = [];
    const q = rt.queue('q', { pollMs: 200, handler: async (t) => void seen.push(t.payload) });
    await rt.start();
    await settle();
    failNext.claim = 1;
    await q.enqueue('x');
    await settle();
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(seen).toEqual([]);
    await clock.advance(200);
    expect(seen).toEqual(['x']);
  });

  it('drain waits for delayed and retrying tasks', async () => {
    const clock = new TestClock();
    rt = createRuntime({ clock });
    let n = 0;
    const q = rt.queue('q', {
      retry: { initialDelayMs: 1000, jitter: false },
      handler: async () => {
        if (++n === 2) throw new Error('once');
      },
    });
    await rt.start();
    await q.enqueue('now');
    await q.enqueue('later', { delayMs: 5000 });
    let drained = false;
    const d = q.drain().then(() => (drained = true));
    await clock.advance(5000);
    expect(drained).toBe(false);
    expect(await q.stats()).toMatchObject({ retrying: 1 });
    await clock.advance(1000);
    await d;
    expect(n).toBe(3);
  });

  it('a queue asked for after stop fails with RUNTIME_STOPPED', async () => {
    rt = createRuntime({ clock: new TestClock() });
    await rt.start();
    await rt.stop();
    expect(() => rt!.queue('late', { handler: async () => {} })).toThrow(
      expect.objectContaining({ code: 'RUNTIME_STOPPED' }),
    );
  });

  it('stop leaves no timer of the queue behind', async () => {
    const clock = new TestClock();
    rt = createRuntime({ clock });
    const q = rt.queue('q', { timeoutMs: 100, handler: async () => {} });
    await rt.start();
    await q.enqueue('x', { delayMs: 10_000 });
    await settle();
    expect(clock.pending).toBeGreaterThan(0);
    await rt.stop();
    expect(clock.pending).toBe(0);
  });
});
