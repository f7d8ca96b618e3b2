/**
 * Task queue throughput on PostgreSQL: keel (`postgresStore`, default options)
 * beside graphile-worker 0.17 (its defaults, and batched: its documented
 * high-throughput configuration) and pg-boss 10, on the same database in the
 * same run, each in a schema of its own (dropped afterwards).
 *
 * End to end: the workers start on an empty queue (not timed), then N no-op
 * jobs are enqueued in bulk (keel: 1,000 concurrent `enqueue` calls, batched
 * into one statement; graphile-worker: `addJobs`; pg-boss: `insert`) and the
 * clock stops when every job ran; jobs/s = N / that time. N = 60,000 (env
 * `BENCH_PG_N`) for keel and graphile-worker batched (at 20,000 a run took half
 * a second, and one checkpoint or pruner pass in it moved the median by a
 * third), 5,000 for the slower anchors (graphile-worker's defaults, pg-boss) to
 * keep the run short.
 * Concurrency (handler calls at once per worker) 1 and 16; one worker in this
 * process, or two worker processes (`_pgWorker.ts`) fed by this one. pg-boss 10
 * sleeps its polling interval (at least 0.5 s) after every fetch, so it fetches
 * `BENCH_BOSS_BATCH` (default 500) jobs at a time, run `concurrency` at once.
 * Runs are interleaved and the median of `BENCH_PG_RUNS` (default 3) is kept.
 *
 * keel runs in its defaults: each claim is sized by the handlers' pace, at most `batchSize` (500), the
 * size of graphile-worker batched's local queue.
 *
 * Ceiling: the same N tasks moved on keel's schema by the minimal SQL alone,
 * no runtime: one claim of 500 tasks (keel's default cap)
 * and one settle per batch, the next claim overlapping the last settle, as keel does.
 *
 * Retention (issue #16.2): keel end to end at concurrency 16 with the default
 * retention (the last 1,000 succeeded tasks kept in task_history, pruned in
 * the background under an advisory lock) beside a queue that keeps nothing
 * (`retention: { succeeded: { count: 0 } }`), interleaved, aimed at >= 85%.
 *
 * Deep backlog: `KEEL_BENCH_BACKLOG` (default 200,000) jobs are enqueued
 * first, then one worker at concurrency 8 drains them; the rates over the
 * first and the last fifth are reported (pg-boss fetches 2,000 at a time
 * here); keel drains `BENCH_PG_RUNS` times and its run of median flatness is kept. Database: `KEEL_PG_URL`, default the local `test` database.
 *
 * Issue #15: keel with priorities, with 10,000 groups and with a
 * `globalConcurrency` against plain keel in the same run, and a backlog of
 * `KEEL_BENCH_GROUPED_BACKLOG` (default 100,000) over 10,000 groups drained
 * (`_claimVariants.ts`: its middle fifths against the first; the last fifth,
 * where the groups run dry together, apart). `KEEL_BENCH_PG_ONLY=claims` runs only these rows
 * (no anchors, ceiling, retention or plain backlog), for a quick try; run
 * directly (`npx tsx bench/queue-postgres.ts`) it prints the table and writes no results file.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createRuntime, postgresStore, type RetentionOptions } from '../src/index.js';
import { claimVariantRows, groupedBacklogRows } from './_claimVariants.js';
import { KEEL_BATCH, LIBS, type Lib, PG_URL, producer, startWorker } from './_pgLibs.js';
import { median, printTable, ratio, type TableRow } from './harness.js';

const N = Number(process.env.BENCH_PG_N) || 60_000;
const RUNS = Math.max(1, Number(process.env.BENCH_PG_RUNS) || 3);
const BACKLOG = Number(process.env.KEEL_BENCH_BACKLOG) || 200_000;
/** The backlog spread over 10,000 groups (issue #15): smaller, since grouped claims visit a group per task batch. */
const GROUPED_BACKLOG = Number(process.env.KEEL_BENCH_GROUPED_BACKLOG) || 100_000;
/** The claim size of the ceiling rows: keel's default cap. */
const CEILING_BATCHES = [KEEL_BATCH] as const;
/** Tasks per run of the issue #15 variant rows: as on SQLite and memory (`bench/queue.ts`), so the stores compare. */
const CLAIM_N = Number(process.env.KEEL_BENCH_CLAIM_N) || 20_000;
/** `claims`: only the issue #15 rows. */
const ONLY = process.env.KEEL_BENCH_PG_ONLY;
const workerScript = fileURLToPath(new globalThis.URL('./_pgWorker.ts', import.meta.url));
const verbose = (line: string) => process.env.BENCH_VERBOSE && console.log(`  ${line}`);

/** Jobs per end-to-end run: the slow anchors get fewer, or the run would take minutes. */
const jobsFor = (lib: Lib) => (lib === 'graphile-worker' || lib === 'pg-boss' ? Math.min(5000, Math.round(N / 4)) : N);

let seq = 0;
const schemaName = (lib: string) => `bench_${lib.replace(/[^a-z]/g, '').slice(0, 5)}_${process.pid}_${++seq}`;

async function sql<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const dropSchema = (schema: string) => sql((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker whose finished-job count this process can read. */
interface Running {
  done(): number;
  stop(): Promise<void>;
}

async function inThisProcess(lib: Lib, schema: string, concurrency: number, bossBatch?: number): Promise<Running> {
  let done = 0;
  const stop = await startWorker(
    lib,
    schema,
    concurrency,
    async () => {
      done++;
    },
    bossBatch,
  );
  return { done: () => done, stop };
}

function inChild(lib: Lib, schema: string, concurrency: number): Promise<Running> {
  const child: ChildProcess = fork(workerScript, [lib, schema, String(concurrency)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let done = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.connected) child.send('stop');
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.on('message', (m: { ready?: boolean; done?: number }) => {
      if (m.ready) resolve({ done: () => done, stop });
      if (m.done !== undefined) done = m.done;
    });
    void exited.then(() => reject(new Error(`${lib} worker exited early (${child.exitCode})`)));
  });
}

/** One end-to-end run; returns jobs/s from the first enqueue to the last job done. */
async function once(lib: Lib, concurrency: number, workers: number): Promise<number> {
  const n = jobsFor(lib);
  const schema = schemaName(lib);
  const jobs = await producer(lib, schema);
  const running: Running[] = [];
  try {
    for (let w = 0; w < workers; w++) {
      running.push(await (workers === 1 ? inThisProcess : inChild)(lib, schema, concurrency));
    }
    const t0 = performance.now();
    await jobs.enqueue(n);
    while (running.reduce((sum, r) => sum + r.done(), 0) < n) await sleep(1);
    const ms = performance.now() - t0;
    verbose(`c=${concurrency} w=${workers} ${lib}: ${n} jobs in ${ms.toFixed(0)} ms`);
    return n / (ms / 1000);
  } finally {
    for (const r of running) await r.stop();
    await jobs.close();
    await dropSchema(schema);
  }
}

/** One keel end-to-end run at concurrency 16 with `retention` (undefined: the default); jobs/s. */
async function keelWithRetention(retention: RetentionOptions | undefined): Promise<number> {
  const schema = schemaName('keelret');
  const jobs = await producer('keel', schema);
  let done = 0;
  const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
  rt.queue('bench', {
    concurrency: 16,
    ...(retention !== undefined && { retention }),
    handler: async () => {
      done++;
    },
  });
  await rt.start();
  try {
    const t0 = performance.now();
    await jobs.enqueue(N);
    while (done < N) await sleep(1);
    const ms = performance.now() - t0;
    verbose(`retention ${retention === undefined ? 'default' : 'none'}: ${N} jobs in ${ms.toFixed(0)} ms`);
    return N / (ms / 1000);
  } finally {
    await rt.stop();
    await jobs.close();
    await dropSchema(schema);
  }
}

/** Rates over the first and the last fifth of a drained backlog, and keel's heap at both points. */
interface Drain {
  first: number;
  last: number;
  heapFirst: number;
  heapLast: number;
}

/**
 * The heap the drain retains: the least of three collections 5 ms apart (the drain goes on in between; only the
 * collections pause it). One sample swings by a third with the batches in flight at that instant (a claim's 500
 * payloads, a result buffer), which is not growth.
 */
async function heapNow(): Promise<number> {
  let least = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(5);
    (globalThis as { gc?: () => void }).gc?.();
    least = Math.min(least, process.memoryUsage().heapUsed);
  }
  return least;
}

/** Enqueues `BACKLOG` jobs with no worker running, then drains them with one worker at concurrency 8. */
async function backlog(lib: Lib): Promise<Drain> {
  const schema = schemaName(lib);
  const jobs = await producer(lib, schema);
  let worker: Running | undefined;
  try {
    await jobs.enqueue(BACKLOG);
    const fifth = BACKLOG / 5;
    const marks: number[] = [];
    const heaps: number[] = [];
    const t0 = performance.now();
    worker = await inThisProcess(lib, schema, 8, 2000);
    while (marks.length < 5) {
      await sleep(2);
      if (worker.done() >= fifth * (marks.length + 1)) {
        marks.push(performance.now());
        if (marks.length === 1 || marks.length === 4) heaps.push(await heapNow());
      }
    }
    const rate = (from: number, to: number) => fifth / ((to - from) / 1000);
    const out = {
      first: rate(t0, marks[0]!),
      last: rate(marks[3]!, marks[4]!),
      heapFirst: heaps[0]!,
      heapLast: heaps[1]!,
    };
    verbose(
      `backlog ${BACKLOG} ${lib}: fifths ${marks.map((m, i) => rate(i ? marks[i - 1]! : t0, m).toFixed(0)).join(' ')} /s`,
    );
    return out;
  } finally {
    await worker?.stop();
    await jobs.close();
    await dropSchema(schema);
  }
}

/** The minimal SQL on keel's schema: batched claim, batched delete, the next claim overlapping the last settle. */
async function ceiling(batch: number): Promise<number> {
  const schema = schemaName('ceil');
  const jobs = await producer('keel', schema);
  const s = `"${schema}"`;
  const claimer = new pg.Client({ connectionString: PG_URL });
  const settler = new pg.Client({ connectionString: PG_URL });
  await claimer.connect();
  await settler.connect();
  try {
    await jobs.enqueue(N);
    const claim = `
      WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
      UPDATE ${s}.tasks t SET state = 'active', attempt = attempt + 1, lease_token = 'x', lease_until = $2
      WHERE t.id IN (SELECT id FROM ${s}.tasks WHERE queue = 'bench' AND state = 'pending' AND run_at <= $1
        ORDER BY run_at, id LIMIT ${batch} FOR UPDATE SKIP LOCKED) AND EXISTS (SELECT FROM async)
      RETURNING t.id`;
    const settle = `DELETE FROM ${s}.tasks WHERE id = ANY($1::bigint[])`;
    let moved = 0;
    let settling: Promise<unknown> = Promise.resolve();
    const t0 = performance.now();
    for (;;) {
      const now = Date.now();
      const { rows } = await claimer.query({ name: `claim${batch}`, text: claim, values: [now, now + 60_000] });
      if (rows.length === 0) break;
      moved += rows.length;
      const ids = rows.map((r: { id: string }) => r.id);
      settling = settling.then(() => settler.query({ name: 'settle', text: settle, values: [ids] }));
    }
    await settling;
    const ms = performance.now() - t0;
    if (moved !== N) throw new Error(`ceiling moved ${moved} of ${N} tasks`);
    return N / (ms / 1000);
  } finally {
    await claimer.end();
    await settler.end();
    await jobs.close();
    await dropSchema(schema);
  }
}

/** Runs the Postgres queue benchmark. */
export async function run(): Promise<TableRow[]> {
  // keel's schema must exist before its producer and workers race to create it.
  await postgresStore({ connectionString: PG_URL, schema: 'bench_warm' })
    .open()
    .catch(() => {});
  await dropSchema('bench_warm');
  if (ONLY === 'claims') return claimRows();
  const rows: TableRow[] = [];
  const keelAt: Record<string, number> = {};
  for (const [concurrency, workers] of [
    [1, 1],
    [16, 1],
    [16, 2],
  ] as const) {
    const rates: Partial<Record<Lib, number[]>> = {};
    const ceilings: Record<number, number[]> = {};
    for (let r = 0; r < RUNS; r++) {
      for (let k = 0; k < LIBS.length; k++) {
        const lib = LIBS[(r + k) % LIBS.length] as Lib;
        (rates[lib] ??= []).push(await once(lib, concurrency, workers));
      }
      if (concurrency === 16 && workers === 1) {
        for (const b of CEILING_BATCHES) (ceilings[b] ??= []).push(await ceiling(b));
      }
    }
    const ours = median(rates.keel!);
    const name = `end-to-end jobs/s, postgres, concurrency ${concurrency}${workers > 1 ? `, ${workers} worker processes` : ''}`;
    keelAt[`${concurrency}/${workers}`] = ours;
    for (const [anchor, target] of [
      ['graphile-worker batched', 1],
      ['graphile-worker', 1],
      ['pg-boss', 2],
    ] as const) {
      const theirs = median(rates[anchor]!);
      rows.push({
        name,
        opsPerSec: Math.round(ours),
        vs: anchor === 'graphile-worker' ? 'graphile-worker (defaults)' : anchor,
        vsOpsPerSec: Math.round(theirs),
        ratio: ratio(ours, theirs),
        target,
      });
    }
    for (const b of CEILING_BATCHES) {
      if (!ceilings[b]) continue;
      const top = median(ceilings[b]);
      rows.push({
        name,
        opsPerSec: Math.round(ours),
        vs: `ceiling: minimal SQL, claim ${b} + settle per batch, no runtime`,
        vsOpsPerSec: Math.round(top),
        ratio: ratio(ours, top),
      });
    }
  }
  const c1 = keelAt['1/1']!;
  const c16 = keelAt['16/1']!;
  rows.push({
    name: 'end-to-end jobs/s, postgres, keel concurrency 16',
    opsPerSec: Math.round(c16),
    vs: 'keel concurrency 1',
    vsOpsPerSec: Math.round(c1),
    ratio: ratio(c16, c1),
    target: 1,
  });

  const kept: number[] = [];
  const none: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    if (r % 2 === 0) {
      kept.push(await keelWithRetention(undefined));
      none.push(await keelWithRetention({ succeeded: { count: 0 } }));
    } else {
      none.push(await keelWithRetention({ succeeded: { count: 0 } }));
      kept.push(await keelWithRetention(undefined));
    }
  }
  rows.push({
    name: 'end-to-end jobs/s, postgres, concurrency 16, default retention',
    opsPerSec: Math.round(median(kept)),
    vs: 'keel, retention keeps nothing',
    vsOpsPerSec: Math.round(median(none)),
    ratio: ratio(median(kept), median(none)),
    target: 0.85,
  });

  const drains: Partial<Record<Lib, Drain>> = {};
  // keel drains three times and keeps the run of median flatness: one run's fifths swing by a fifth either way
  // (tenths of a 200k drain measured alone ranged 45k-67k/s with no trend). The anchors drain once (pg-boss
  // takes most of a minute).
  const keelRuns: Drain[] = [];
  for (let r = 0; r < RUNS; r++) keelRuns.push(await backlog('keel'));
  keelRuns.sort((a, b) => a.last / a.first - b.last / b.first);
  drains.keel = keelRuns[keelRuns.length >> 1]!;
  for (const lib of ['graphile-worker batched', 'pg-boss'] as const) drains[lib] = await backlog(lib);
  const k = drains.keel!;
  const label = `deep backlog (${BACKLOG.toLocaleString('en')} enqueued, then drained at concurrency 8)`;
  for (const part of ['first', 'last'] as const) {
    for (const [mine, anchor] of [
      ['keel', 'graphile-worker batched'],
      ['keel', 'pg-boss'],
    ] as const) {
      const ours = drains[mine]![part];
      const theirs = drains[anchor]![part];
      rows.push({
        name: `${label}, jobs/s over the ${part} fifth`,
        opsPerSec: Math.round(ours),
        vs: anchor,
        vsOpsPerSec: Math.round(theirs),
        ratio: ratio(ours, theirs),
        target: 1,
      });
    }
  }
  rows.push({
    name: `${label}, keel: last fifth vs first fifth`,
    opsPerSec: Math.round(k.last),
    vs: 'keel, first fifth',
    vsOpsPerSec: Math.round(k.first),
    ratio: ratio(k.last, k.first),
    target: 0.8,
  });
  rows.push({
    name: `heap bytes in use, ${label}: keel at the fourth fifth vs the first`,
    opsPerSec: k.heapLast,
    vs: 'keel, first fifth',
    vsOpsPerSec: k.heapFirst,
    ratio: ratio(k.heapLast, k.heapFirst),
    target: 1.25,
    lowerIsBetter: true,
  });
  rows.push(...(await claimRows()));
  return rows;
}

/** Issue #15: priorities, groups and a global limit against the plain queue, and a backlog over many groups. */
async function claimRows(): Promise<TableRow[]> {
  const pgStore = () => {
    const schema = schemaName('claim');
    return {
      store: postgresStore({ connectionString: PG_URL, schema }),
      dispose: async () => {
        await dropSchema(schema);
      },
    };
  };
  return [
    ...(await claimVariantRows('postgres', pgStore, CLAIM_N, RUNS)),
    ...(await groupedBacklogRows('postgres', pgStore, GROUPED_BACKLOG, 10_000, RUNS)),
  ];
}

// Run directly: the table only (bench/run.ts writes bench/results/queue-postgres.json).
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  printTable('queue-postgres', await run());
}
