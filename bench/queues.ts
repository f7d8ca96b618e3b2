/**
 * Many queues in one runtime (one per tenant): create N queues with a
 * handler, start the runtime, let them idle for `IDLE_MS`, stop. Each phase
 * is timed; the row's rate is queues per second over the whole cycle, and the
 * name carries the phase times and the store calls the idle queues made.
 * N = 1,000 and 10,000, memory store. There is no anchor library here: the
 * number to watch is that 10x the queues costs about 10x the time (issue #12,
 * point 17: it used to grow quadratically).
 */
import { createRuntime, memoryStore } from '../src/index.js';
import type { Store } from '../src/stores/store.js';
import type { TableRow } from './harness.js';

const IDLE_MS = Number(process.env.BENCH_QUEUES_IDLE_MS) || 2000;
const POLL_MS = 500;

/** A memory store that counts `nextDueAt` + `claim` + `expireLeases` calls. */
function countingStore(): { store: Store; calls: () => number } {
  const inner = memoryStore();
  let n = 0;
  const store = Object.create(inner) as Store;
  for (const m of ['nextDueAt', 'claim', 'expireLeases'] as const) {
    const original = (inner[m] as (...a: unknown[]) => Promise<unknown>).bind(inner);
    (store as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => {
      n++;
      return original(...a);
    };
  }
  return { store, calls: () => n };
}

async function cycle(n: number): Promise<{ createMs: number; startMs: number; idleCalls: number; stopMs: number }> {
  const { store, calls } = countingStore();
  const rt = createRuntime({ store });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) rt.queue(`tenant-${i}`, { pollMs: POLL_MS, handler: () => {} });
  const t1 = performance.now();
  await rt.start();
  // Let the first claim round of every queue land before counting the idle calls.
  await new Promise((r) => setTimeout(r, 200));
  const t2 = performance.now();
  const before = calls();
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idleCalls = calls() - before;
  const t3 = performance.now();
  await rt.stop();
  const t4 = performance.now();
  return { createMs: t1 - t0, startMs: t2 - t1 - 200, idleCalls, stopMs: t4 - t3 };
}

export async function run(): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  await cycle(200);
  for (const n of [1000, 10_000]) {
    const t = await cycle(n);
    const perPoll = (t.idleCalls * POLL_MS) / IDLE_MS;
    const total = t.createMs + t.startMs + t.stopMs;
    rows.push({
      name: `${n} queues: create ${t.createMs.toFixed(0)} ms, start ${t.startMs.toFixed(0)} ms, stop ${t.stopMs.toFixed(0)} ms, idle ${perPoll.toFixed(0)} store calls per ${POLL_MS} ms poll`,
      opsPerSec: Math.round(n / (total / 1000)),
      vs: 'none',
      vsOpsPerSec: 0,
      ratio: 0,
    });
  }
  return rows;
}
