/**
 * The benchmark harness every `bench/<name>.ts` module uses.
 *
 * A benchmark module exports `async function run(): Promise<Row[]>`; `bench/run.ts`
 * runs it (in its own process, with `--expose-gc`), prints the table and writes
 * `bench/results/<name>.json`. `npm run bench -- <name>` runs just that one. A
 * typical module:
 *
 * ```ts
 * import { compare, compareHeap, type TableRow } from './harness.js';
 *
 * export async function run(): Promise<TableRow[]> {
 *   const rows = await compare({
 *     name: 'breaker call, closed',
 *     keel: () => breaker.call(fn),            // sync, or async: return the promise
 *     vs: { cockatiel: () => policy.execute(fn), opossum: () => cb.fire() },
 *     target: { cockatiel: 1.0 },              // optional: ratio aimed for (printed, never asserted)
 *     check: () => assert(calls > 0),          // optional: runs after measuring; throw to fail
 *   });
 *   rows.push(...(await compareHeap({          // heap bytes per object, keel vs each anchor
 *     name: 'breaker',
 *     keel: (i) => rt.breaker(`b${i}`),
 *     vs: { opossum: () => new CircuitBreaker(fn), cockatiel: () => circuitBreaker(handleAll, opts) },
 *     dispose: (b) => ...,                     // optional: release each keel object afterwards
 *   })));
 *   return rows;
 * }
 * ```
 *
 * Method: each operation runs in batches (batch size calibrated so one batch
 * lasts about a millisecond, so timer reads do not dominate), after a warm-up.
 * All contenders of one `compare` run interleaved (keel, A, B, keel, A, B, ...)
 * in the same process, `runs` times (default 5, at least 3), and the median of
 * the runs is kept (`BENCH_VERBOSE=1` prints every run, `BENCH_TIME_MS` sets the
 * round length). `ratio` is keel / anchor: above 1 keel is faster; for heap rows
 * (`compareHeap`, `heapBytesPer`) the fields hold bytes and above 1 keel uses more.
 * Also here: `median`, `ratio`, `fmt`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One result line; exactly what lands in `bench/results/<name>.json`. */
export interface Row {
  name: string;
  opsPerSec: number;
  vs: string;
  vsOpsPerSec: number;
  /** keel / anchor. */
  ratio: number;
}

/** A row plus what is only printed: the ratio aimed for and whether higher is better. */
export interface TableRow extends Row {
  target?: number;
  /** True for heap rows: the target is a ceiling, not a floor. */
  lowerIsBetter?: boolean;
}

/** The shape written to `bench/results/<name>.json`. */
export interface Results {
  node: string;
  cpu: string;
  date: string;
  rows: Row[];
}

/** An operation to measure: sync, or async when it returns a promise. */
export type Op = () => unknown;

/** Options of `compare` (and `measureInterleaved`). */
export interface MeasureOptions {
  /** Measured rounds per contender; the median is kept. Default 5, minimum 3. */
  runs?: number;
  /** Length of one measured round per contender. Default 400 ms (env `BENCH_TIME_MS`). */
  timeMs?: number;
  /** Warm-up per contender before the first round. Default 200 ms. */
  warmupMs?: number;
  /** Force async (await each call); default: detected from the first call's result. */
  async?: boolean;
  /** Operations one call performs (e.g. 100 when each call enqueues and drains 100 tasks). Default 1. */
  opsPerCall?: number;
}

/** One `compare` group: a keel case against one or more anchors. */
export interface Comparison extends MeasureOptions {
  /** Row name, e.g. `publish, exact topic, 1 subscriber`. */
  name: string;
  keel: Op;
  /** Anchors by display name, e.g. `{ mitt: () => emitter.emit('a', 1) }`. */
  vs: Record<string, Op>;
  /**
   * Ratio aimed for; printed with a pass/miss mark, never asserted. A number
   * applies to every anchor; a record only to the anchors it names.
   */
  target?: number | Record<string, number>;
  /** Runs after measuring (e.g. verify handler counters); throw to fail the benchmark. */
  check?: () => void;
}

const DEFAULT_RUNS = 5;
const DEFAULT_TIME_MS = Number(process.env.BENCH_TIME_MS) || 400;
const DEFAULT_WARMUP_MS = 200;
/** A batch should last about this long, so two `hrtime` reads per batch cost nothing. */
const BATCH_TARGET_NS = 1_000_000;

let loopCount = 0;

/**
 * Builds the loop that calls `op` `n` times. Each contender gets a freshly
 * compiled loop (unique source), so its call site stays monomorphic and V8 can
 * inline `op` into it, instead of one shared loop going megamorphic and taxing
 * whichever contender runs second.
 */
function makeLoop(op: Op, isAsync: boolean): (n: number) => unknown {
  const id = loopCount++;
  const body = isAsync
    ? `return async function asyncLoop${id}(n) { for (let i = 0; i < n; i++) await op(); };`
    : `return function syncLoop${id}(n) { let r; for (let i = 0; i < n; i++) r = op(); return r; };`;
  return new Function('op', body)(op) as (n: number) => unknown;
}

function isPromiseLike(x: unknown): x is PromiseLike<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as PromiseLike<unknown>).then === 'function';
}

/** A contender being measured: its loop and its calibrated batch size. */
class Contender {
  batch = 1;
  readonly samples: number[] = [];
  private readonly loop: (n: number) => unknown;

  constructor(
    readonly name: string,
    op: Op,
    readonly isAsync: boolean,
    private readonly opsPerCall: number,
  ) {
    this.loop = makeLoop(op, isAsync);
  }

  /** Runs batches for about `ms`; returns ops/s. */
  async round(ms: number): Promise<number> {
    const budget = BigInt(Math.round(ms * 1e6));
    let ops = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0n;
    do {
      const r = this.loop(this.batch);
      if (this.isAsync) await r;
      ops += this.batch;
      elapsed = process.hrtime.bigint() - start;
    } while (elapsed < budget);
    return (ops * this.opsPerCall * 1e9) / Number(elapsed);
  }

  /** Grows the batch until one batch lasts at least `BATCH_TARGET_NS` (slow operations stay at 1). */
  async calibrate(): Promise<void> {
    for (;;) {
      const start = process.hrtime.bigint();
      const r = this.loop(this.batch);
      if (this.isAsync) await r;
      const ns = Number(process.hrtime.bigint() - start);
      if (ns >= BATCH_TARGET_NS || this.batch >= 1 << 24) return;
      this.batch = ns < BATCH_TARGET_NS / 8 ? this.batch * 8 : this.batch * 2;
    }
  }
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Whole ops/s, or two decimals below 100 ops/s so slow operations do not round to 0. */
function roundOps(x: number): number {
  return x >= 100 ? Math.round(x) : Math.round(x * 100) / 100;
}

/** keel / anchor, rounded to 3 decimals; 0 when the anchor measured nothing. */
export function ratio(keel: number, anchor: number): number {
  if (!(anchor > 0)) return 0;
  return Math.round((keel / anchor) * 1000) / 1000;
}

function settings(options: MeasureOptions): { runs: number; timeMs: number; warmupMs: number } {
  return {
    runs: Math.max(3, options.runs ?? DEFAULT_RUNS),
    timeMs: options.timeMs ?? DEFAULT_TIME_MS,
    warmupMs: options.warmupMs ?? DEFAULT_WARMUP_MS,
  };
}

async function contender(name: string, op: Op, options: MeasureOptions): Promise<Contender> {
  let isAsync = options.async;
  if (isAsync === undefined) {
    const first = op();
    isAsync = isPromiseLike(first);
    if (isAsync) await first;
  }
  return new Contender(name, op, isAsync, options.opsPerCall ?? 1);
}

/**
 * Measures contenders interleaved (A, B, C, A, B, C, ...) and returns the
 * median ops/s of each, by name, in the order given.
 */
export async function measureInterleaved(
  ops: Record<string, Op>,
  options: MeasureOptions = {},
): Promise<Map<string, number>> {
  const { runs, timeMs, warmupMs } = settings(options);
  const all: Contender[] = [];
  for (const [name, op] of Object.entries(ops)) all.push(await contender(name, op, options));
  for (const c of all) {
    await c.calibrate();
    await c.round(warmupMs);
    // Calibrate again once optimized: the first batch size came from cold code.
    await c.calibrate();
  }
  for (let r = 0; r < runs; r++) {
    // Rotate the starting contender so none always runs right after a GC-heavy neighbour.
    for (let k = 0; k < all.length; k++) {
      const c = all[(r + k) % all.length] as Contender;
      c.samples.push(await c.round(timeMs));
    }
  }
  if (process.env.BENCH_VERBOSE) {
    for (const c of all)
      console.log(`  ${c.name.replace('\u0000', '')}: batch ${c.batch}, runs ${c.samples.map(fmt).join(' ')}`);
  }
  return new Map(all.map((c) => [c.name, median(c.samples)]));
}

/** Runs a keel case against its anchors, interleaved; one row per anchor. */
export async function compare(c: Comparison): Promise<TableRow[]> {
  const keelName = '\u0000keel';
  const result = await measureInterleaved({ [keelName]: c.keel, ...c.vs }, c);
  c.check?.();
  const keel = result.get(keelName) as number;
  return Object.keys(c.vs).map((vs) => {
    const anchor = result.get(vs) as number;
    const row: TableRow = {
      name: c.name,
      opsPerSec: roundOps(keel),
      vs,
      vsOpsPerSec: roundOps(anchor),
      ratio: ratio(keel, anchor),
    };
    const target = typeof c.target === 'number' ? c.target : c.target?.[vs];
    if (target !== undefined) row.target = target;
    return row;
  });
}

async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Two passes plus a tick: the first can leave weak/finalizable objects for the second.
  for (let i = 0; i < 2; i++) {
    await new Promise((r) => setImmediate(r));
    gc?.();
  }
}

/**
 * Heap bytes per object made by `create`: the median over `samples` of
 * (heapUsed after creating `count` objects - before) / `count`, with a full GC
 * before each reading when `--expose-gc` is on (otherwise a noisier best
 * effort). Objects are kept alive until measured; `dispose` (optional) frees
 * each one afterwards (e.g. stop a runtime).
 */
export async function heapBytesPer<T>(
  create: (i: number) => T | Promise<T>,
  options: { count?: number; samples?: number; dispose?: (obj: T) => unknown } = {},
): Promise<number> {
  const count = options.count ?? 2_000;
  const samples = Math.max(3, options.samples ?? 3);
  const results: number[] = [];
  // One throwaway round first: module-level caches and lazily compiled code are not per-object cost.
  for (let s = 0; s <= samples; s++) {
    const keep: T[] = new Array(count);
    await settle();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < count; i++) {
      const made = create(i);
      keep[i] = isPromiseLike(made) ? await made : made;
    }
    await settle();
    const after = process.memoryUsage().heapUsed;
    if (s > 0) results.push((after - before) / count);
    if (options.dispose) for (const obj of keep) await options.dispose(obj);
    keep.length = 0;
  }
  return Math.round(median(results));
}

/**
 * A heap row: bytes per object for keel and each anchor. Bytes go in the
 * `opsPerSec`/`vsOpsPerSec` fields (the result file has one shape); the row
 * name says so. ratio = keel / anchor, so here lower is better.
 */
export async function compareHeap<T>(c: {
  /** What one object is, e.g. `breaker` (row name: `heap bytes per breaker`). */
  name: string;
  keel: (i: number) => T | Promise<T>;
  vs: Record<string, (i: number) => unknown>;
  count?: number;
  dispose?: (obj: T) => unknown;
  /** Ceiling on the ratio; printed, never asserted. */
  target?: number;
}): Promise<TableRow[]> {
  const keel = await heapBytesPer(c.keel, { count: c.count, dispose: c.dispose });
  const rows: TableRow[] = [];
  for (const [vs, create] of Object.entries(c.vs)) {
    const anchor = await heapBytesPer(create, { count: c.count });
    const row: TableRow = {
      name: `heap bytes per ${c.name}`,
      opsPerSec: keel,
      vs,
      vsOpsPerSec: anchor,
      ratio: ratio(keel, anchor),
      lowerIsBetter: true,
    };
    if (c.target !== undefined) row.target = c.target;
    rows.push(row);
  }
  return rows;
}

/** A number for a table: `1.23M`, `45.6k`, `789`, `1.5`. */
export function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(n >= 100 ? 0 : 1);
}

function mark(row: TableRow): string {
  if (row.target === undefined) return '';
  const ok = row.lowerIsBetter ? row.ratio <= row.target : row.ratio >= row.target;
  return `${ok ? 'ok  ' : 'MISS'} ${row.lowerIsBetter ? '<=' : '>='}${row.target}x`;
}

/** Prints rows as an aligned table. */
export function printTable(title: string, rows: readonly TableRow[]): void {
  const header = ['name', 'ops/s', 'vs', 'vs ops/s', 'ratio', 'target'];
  const body = rows.map((r) => [r.name, fmt(r.opsPerSec), r.vs, fmt(r.vsOpsPerSec), `${r.ratio.toFixed(2)}x`, mark(r)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((line) => (line[i] as string).length)));
  const right = new Set([1, 3, 4]);
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (right.has(i) ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  console.log(`\n${title}  (${describeMachine()})`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const cells of body) console.log(line(cells));
}

/** `<cpu model> x <cores>`. */
export function describeMachine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown cpu'} x ${cpus.length}`;
}

/** Where results go: `bench/results/`. */
export const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes `bench/results/<name>.json` with exactly `{ node, cpu, date, rows }`; returns the path. */
export function writeResults(name: string, rows: readonly TableRow[], dir = resultsDir): string {
  const results: Results = {
    node: process.version,
    cpu: describeMachine(),
    date: new Date().toISOString(),
    rows: rows.map(({ name, opsPerSec, vs, vsOpsPerSec, ratio }) => ({ name, opsPerSec, vs, vsOpsPerSec, ratio })),
  };
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  return path;
}
