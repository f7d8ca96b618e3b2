import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuntime, memoryStore, type Runtime, type Store, sqliteStore } from '../../src/index.js';
import type { Task } from '../../src/runtime/queues.js';
import { type Fault, faultyStore, TASK_METHODS } from '../fixtures/fakeStore.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { sleep, until } from '../fixtures/wait.js';

/**
 * Issue #12, "done when" for queues: random store faults (calls that fail,
 * that fail after the store applied them, that stall) and random event-loop
 * stalls longer than `leaseMs`, driven through a real queue on a real clock.
 * Invariants: no task runs twice at once in this process; nothing is lost
 * (every enqueued task ends succeeded or dead); a task the store recorded as
 * succeeded never runs again.
 */

const LEASE_MS = 40;
const TASKS = 12;

const faultArb: fc.Arbitrary<Fault | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant<Fault>({ kind: 'fail' }) },
  { weight: 1, arbitrary: fc.constant<Fault>({ kind: 'failAfter' }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 * LEASE_MS }).map<Fault>((ms) => ({ kind: 'stall', ms })) },
);

/** What happens to each task's runs: how long, and whether the run stalls the whole process. */
const runArb = fc.record({
  ms: fc.integer({ min: 0, max: 30 }),
  stall: fc.boolean(),
  heedsSignal: fc.boolean(),
  fails: fc.boolean(),
});

const scenarioArb = fc.record({
  concurrency: fc.integer({ min: 1, max: 4 }),
  faults: fc.array(faultArb, { minLength: 20, maxLength: 80 }),
  runs: fc.array(runArb, { minLength: TASKS, maxLength: TASKS }),
});

function busyWait(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
}

async function play(base: () => Store, scenario: unknown) {
  const { concurrency, faults, runs } = scenario as {
    concurrency: number;
    faults: (Fault | undefined)[];
    runs: { ms: number; stall: boolean; heedsSignal: boolean; fails: boolean }[];
  };
  let next = 0;
  let faulting = true;
  const { store } = faultyStore(base(), (method) => {
    // Enqueue and stats are the test's own calls: faults there are not what this checks.
    if (!faulting || method === 'enqueue' || method === 'stats') return undefined;
    return faults[next++ % faults.length];
  });
  const running = new Map<number, number>();
  const overlaps: number[] = [];
  const succeededRuns: number[] = [];
  const storedSucceeded = new Set<number>();
  const rerunsAfterStored: number[] = [];
  const rt: Runtime = createRuntime({ store, onError: () => {} });
  const q = rt.queue('faults', {
    concurrency,
    leaseMs: LEASE_MS,
    pollMs: LEASE_MS,
    graceMs: 200,
    retry: { initialDelayMs: 1, maxDelayMs: 20, maxAttempts: 6 },
    handler: async (task: Task<number>) => {
      const n = task.payload;
      if (storedSucceeded.has(n)) rerunsAfterStored.push(n);
      const now = (running.get(n) ?? 0) + 1;
      running.set(n, now);
      if (now > 1) overlaps.push(n);
      const run = runs[n]!;
      try {
        if (run.stall && task.attempt === 1) busyWait(2 * LEASE_MS);
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, run.ms);
          if (run.heedsSignal) {
            task.signal.addEventListener('abort', () => {
              clearTimeout(t);
              reject(task.signal.reason);
            });
          }
        });
        if (run.fails && task.attempt === 1) throw new Error('first attempt fails');
      } finally {
        running.set(n, running.get(n)! - 1);
      }
      succeededRuns.push(n);
    },
  });
  rt.bus.subscribe('task.faults.succeeded', (p) => storedSucceeded.add((p as { payload: number }).payload));
  await rt.start();
  try {
    const ids = await Promise.all(Array.from({ length: TASKS }, (_, n) => q.enqueue(n)));
    // Faults for a while, then the store heals and everything must come to an end.
    await sleep(250);
    faulting = false;
    await until(
      async () => {
        const s = await q.stats();
        return s.pending + s.active + s.retrying === 0;
      },
      15_000,
      'every task to end',
      20,
    );
    const s = await q.stats();
    const dead = await q.dead();
    expect(overlaps, 'tasks run twice at once in this process').toEqual([]);
    expect(rerunsAfterStored, 'tasks run again after the store recorded them succeeded').toEqual([]);
    // Nothing lost: every enqueued task is succeeded or dead (a failed-after enqueue is not in play: enqueues do not fault).
    expect(new Set(ids.map((r) => r.id)).size).toBe(TASKS);
    expect(s.succeeded + s.dead).toBe(TASKS);
    for (const d of dead) expect(ids.map((r) => r.id)).toContain(d.id);
  } finally {
    faulting = false;
    await rt.stop();
  }
}

describe('queues under random store faults and stalls (property)', () => {
  it('memory: no task twice at once, nothing lost, succeeded never re-run', { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, (scenario) => play(() => memoryStore(), scenario)),
      { numRuns: 12, endOnFailure: true },
    );
  });

  it('sqlite: no task twice at once, nothing lost, succeeded never re-run', { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const path = `${tempPath('faults')}.db`;
        try {
          await play(() => sqliteStore({ path }), scenario);
        } finally {
          removeDb(path);
        }
      }),
      { numRuns: 8, endOnFailure: true },
    );
  });

  it('the fault wrapper injects every kind of fault on every task method it names', async () => {
    const inner = memoryStore();
    const kinds: Fault[] = [{ kind: 'fail' }, { kind: 'failAfter' }, { kind: 'stall', ms: 5 }];
    let i = 0;
    const { store, calls } = faultyStore(inner, () => kinds[i++ % 3]);
    await expect(store.enqueue('q', [{ payload: '1', runAt: 0 }], 0)).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    });
    expect((await inner.stats('q', 0)).pending).toBe(0);
    await expect(store.enqueue('q', [{ payload: '1', runAt: 0 }], 0)).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    });
    // Failed after the store applied it.
    expect((await inner.stats('q', 0)).pending).toBe(1);
    await expect(store.stats('q', 0)).resolves.toMatchObject({ pending: 1 });
    expect(calls).toMatchObject({ enqueue: 2, stats: 1 });
    expect(TASK_METHODS).toContain('renew');
  });
});
