/**
 * Issue #15's bench rows: end-to-end throughput with priorities, with 10,000
 * groups and with a `globalConcurrency`, each against the plain queue on the
 * same store in the same run (runs interleaved, median of `runs`); and, where
 * asked, a deep backlog spread over many groups drained (first fifth vs last).
 *
 * Each run: N tasks enqueued into a paused queue (1,000 concurrent `enqueue`
 * calls at a time), then resumed at concurrency 16 and drained; tasks/s = N /
 * the time from resume to drained (the enqueue is the same in every variant
 * and is measured by the other rows).
 */
import type { EnqueueOptions, QueueOptions } from '../src/index.js';
import { createRuntime } from '../src/index.js';
import type { Store } from '../src/stores/store.js';
import { median, ratio, type TableRow } from './harness.js';

const CHUNK = 1000;
const CONCURRENCY = 16;

interface Variant {
  name: string;
  queue: Partial<QueueOptions>;
  enqueue: (i: number) => EnqueueOptions;
}

const VARIANTS: Variant[] = [
  { name: 'plain', queue: {}, enqueue: () => ({}) },
  { name: 'with priorities (10 levels)', queue: {}, enqueue: (i) => ({ priority: i % 10 }) },
  { name: 'with 10,000 groups', queue: {}, enqueue: (i) => ({ group: `g${i % 10_000}` }) },
  // Below the claim batch (16 workers + 500 prefetched): the limit binds, every claim counts the fleet's active tasks.
  { name: 'with globalConcurrency 64', queue: { globalConcurrency: 64 }, enqueue: () => ({}) },
];

/** One run: tasks/s from resume to drained; `onFifths` gets the ms from resume to the end of each fifth. */
async function once(store: Store, n: number, v: Variant, onFifths?: (ms: number[]) => void): Promise<number> {
  const rt = createRuntime({ store });
  let done = 0;
  const fifthAt: number[] = [];
  const fifth = Math.round(n / 5);
  const q = rt.queue('bench', {
    concurrency: CONCURRENCY,
    paused: true,
    ...v.queue,
    handler: () => {
      if (++done % fifth === 0) fifthAt.push(performance.now());
    },
  });
  await rt.start();
  try {
    for (let i = 0; i < n; i += CHUNK) {
      const chunk: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(n, i + CHUNK); j++) chunk.push(q.enqueue({ i: j }, v.enqueue(j)));
      await Promise.all(chunk);
    }
    const t0 = performance.now();
    q.resume();
    await q.drain();
    const ms = performance.now() - t0;
    if (done !== n) throw new Error(`${v.name}: ran ${done} of ${n} tasks`);
    onFifths?.(fifthAt.map((at) => at - t0));
    return n / (ms / 1000);
  } finally {
    await rt.stop();
  }
}

/** The variant rows for one store kind: `fresh()` makes an unopened, empty store; `dispose` removes it. */
export async function claimVariantRows(
  label: string,
  fresh: () => { store: Store; dispose?: () => Promise<void> | void },
  n: number,
  runs: number,
): Promise<TableRow[]> {
  const rates: Record<string, number[]> = {};
  const run = async (v: Variant) => {
    const { store, dispose } = fresh();
    try {
      return await once(store, n, v);
    } finally {
      await dispose?.();
    }
  };
  // Warm-up: JIT, connections, prepared statements.
  await run(VARIANTS[0]!);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(r + k) % VARIANTS.length]!;
      const rate = await run(v);
      (rates[v.name] ??= []).push(rate);
      if (process.env.BENCH_VERBOSE) console.log(`  ${label} ${v.name}: ${rate.toFixed(0)} tasks/s`);
    }
  }
  const plain = median(rates.plain!);
  return VARIANTS.slice(1).map((v) => {
    const ours = median(rates[v.name]!);
    return {
      name: `end-to-end tasks/s, ${label}, concurrency ${CONCURRENCY}, ${v.name}`,
      opsPerSec: Math.round(ours),
      vs: 'keel plain (same store, same run)',
      vsOpsPerSec: Math.round(plain),
      ratio: ratio(ours, plain),
      target: 0.5,
    };
  });
}

/**
 * A deep backlog spread over `groups` groups, drained at concurrency 16: the
 * rate over the second to fourth fifths against the first (flat: about 1),
 * and, as information, the last fifth against the first. The last fifth is
 * where every group runs dry at once: the group cut short at the end of each
 * claim (its turn over, tasks left) waits at the back among groups that gave
 * everything, so the last claims visit many empty groups per task taken. That
 * is the drying of the backlog, not its depth, so it is reported apart.
 * Drained `runs` times on a fresh store each, keeping the run of median
 * flatness: one drain's fifths swing by a tenth either way on a 2-core machine.
 */
export async function groupedBacklogRows(
  label: string,
  fresh: () => { store: Store; dispose?: () => Promise<void> | void },
  n: number,
  groups: number,
  runs = 1,
): Promise<TableRow[]> {
  const v: Variant = { name: 'backlog', queue: {}, enqueue: (i) => ({ group: `g${i % groups}` }) };
  const drains: { first: number; middle: number; last: number }[] = [];
  for (let r = 0; r < runs; r++) {
    const { store, dispose } = fresh();
    let at: number[] = [];
    try {
      await once(store, n, v, (ms) => (at = ms));
      const fifth = n / 5;
      const drain = {
        first: fifth / at[0]!,
        middle: (3 * fifth) / (at[3]! - at[0]!),
        last: fifth / (at[4]! - at[3]!),
      };
      drains.push(drain);
      if (process.env.BENCH_VERBOSE) {
        const f = (x: number) => (x * 1000).toFixed(0);
        console.log(
          `  ${label} grouped backlog tasks/s: first fifth ${f(drain.first)}, 2nd-4th ${f(drain.middle)}, last ${f(drain.last)}`,
        );
      }
    } finally {
      await dispose?.();
    }
  }
  drains.sort((a, b) => a.middle / a.first - b.middle / b.first);
  const { first, middle, last } = drains[drains.length >> 1]!;
  const name = `deep backlog over ${groups.toLocaleString('en')} groups (${n.toLocaleString('en')} enqueued), ${label}`;
  return [
    {
      name: `${name}: tasks/s over the second to fourth fifths`,
      opsPerSec: Math.round(middle * 1000),
      vs: 'first fifth',
      vsOpsPerSec: Math.round(first * 1000),
      ratio: ratio(middle, first),
      target: 0.8,
    },
    {
      name: `${name}: tasks/s over the last fifth (the groups run dry together)`,
      opsPerSec: Math.round(last * 1000),
      vs: 'first fifth',
      vsOpsPerSec: Math.round(first * 1000),
      ratio: ratio(last, first),
    },
  ];
}
