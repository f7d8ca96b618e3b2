/**
 * Task queue throughput on PostgreSQL: keel (`postgresStore`) beside
 * graphile-worker 0.17 and pg-boss 10, on the same database in the same run,
 * each in a schema of its own (dropped afterwards).
 *
 * End to end: the workers start on an empty queue (not timed), then N no-op
 * jobs (N = 5,000, env `BENCH_PG_N`) are enqueued in bulk (keel: 1,000
 * concurrent `enqueue` calls, batched into one statement; graphile-worker:
 * `addJobs`; pg-boss: `insert`) and the clock stops when every job ran;
 * jobs/s = N / that time. Concurrency (handler calls at once per worker) 1 and
 * 16; one worker in this process, or two worker processes (`_pgWorker.ts`)
 * fed by this one. pg-boss 10 sleeps its polling interval (at least 0.5 s)
 * after every fetch, so it fetches `BENCH_BOSS_BATCH` (default 500) jobs at a
 * time, run `concurrency` at once. Every library runs with its defaults
 * otherwise. Runs are interleaved and the median of `BENCH_PG_RUNS` (default
 * 3) is kept. Database: `KEEL_PG_URL`, default the local `test` database.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LIBS, type Lib, PG_URL, producer, startWorker } from './_pgLibs.js';
import { median, ratio, type TableRow } from './harness.js';

const N = Number(process.env.BENCH_PG_N) || 5000;
const RUNS = Math.max(1, Number(process.env.BENCH_PG_RUNS) || 3);
const workerScript = fileURLToPath(new globalThis.URL('./_pgWorker.ts', import.meta.url));

let seq = 0;
const schemaName = (lib: Lib) => `bench_${lib.replace(/[^a-z]/g, '').slice(0, 5)}_${process.pid}_${++seq}`;

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

/** A worker whose finished-job count this process can read. */
interface Running {
  done(): number;
  stop(): Promise<void>;
}

async function inThisProcess(lib: Lib, schema: string, concurrency: number): Promise<Running> {
  let done = 0;
  const stop = await startWorker(lib, schema, concurrency, async () => {
    done++;
  });
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

/** One end-to-end run; returns ms from the first enqueue to the last job done. */
async function once(lib: Lib, concurrency: number, workers: number): Promise<number> {
  const schema = schemaName(lib);
  const jobs = await producer(lib, schema);
  const running: Running[] = [];
  try {
    for (let w = 0; w < workers; w++) {
      running.push(await (workers === 1 ? inThisProcess : inChild)(lib, schema, concurrency));
    }
    const t0 = performance.now();
    await jobs.enqueue(N);
    while (running.reduce((sum, r) => sum + r.done(), 0) < N) await new Promise((r) => setTimeout(r, 1));
    return performance.now() - t0;
  } finally {
    for (const r of running) await r.stop();
    await jobs.close();
    await dropSchema(schema);
  }
}

/** Runs the Postgres queue benchmark. */
export async function run(): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  for (const [concurrency, workers] of [
    [1, 1],
    [16, 1],
    [16, 2],
  ] as const) {
    const rates: Partial<Record<Lib, number[]>> = {};
    for (let r = 0; r < RUNS; r++) {
      for (let k = 0; k < LIBS.length; k++) {
        const lib = LIBS[(r + k) % LIBS.length] as Lib;
        const ms = await once(lib, concurrency, workers);
        (rates[lib] ??= []).push(N / (ms / 1000));
        if (process.env.BENCH_VERBOSE) console.log(`  c=${concurrency} w=${workers} ${lib}: ${ms.toFixed(0)} ms`);
      }
    }
    const ours = median(rates.keel!);
    for (const [anchor, target] of [
      ['graphile-worker', 1],
      ['pg-boss', 2],
    ] as const) {
      const theirs = median(rates[anchor]!);
      rows.push({
        name: `end-to-end jobs/s, postgres, concurrency ${concurrency}${workers > 1 ? `, ${workers} worker processes` : ''}`,
        opsPerSec: Math.round(ours),
        vs: `${anchor} (postgres)`,
        vsOpsPerSec: Math.round(theirs),
        ratio: ratio(ours, theirs),
        target,
      });
    }
  }
  return rows;
}
