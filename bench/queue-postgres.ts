/**
 * Task queue throughput on PostgreSQL: keel (`postgresStore`) beside
 * graphile-worker 0.17 and pg-boss 10, on the same database in the same run,
 * each in a schema of its own (dropped afterwards).
 *
 * End to end, as `bench/queue.ts`: enqueue N no-op jobs (N = 5,000, env
 * `BENCH_PG_N`) in bulk (keel: 1,000 concurrent `enqueue` calls, batched into
 * one statement; graphile-worker: `addJobs`; pg-boss: `insert`), then start the
 * workers and wait until every job ran; jobs/s = N / total time. Concurrency
 * (handler calls running at once) 1 and 16. pg-boss 10 sleeps its polling
 * interval (at least 0.5 s) after every fetch, so one job per fetch would run
 * 2 jobs/s: it gets one `work` loop fetching `BENCH_BOSS_BATCH` (default 500)
 * jobs at a time, run `concurrency` at once (generous: keel claims 32 ahead).
 * With two workers, each library's worker runs in two child processes
 * (`_pgWorker.ts`, started before the clock runs) while this process enqueues.
 * Every library runs with its defaults otherwise. Runs are interleaved and the median of
 * `BENCH_PG_RUNS` (default 3) is kept. Database: `KEEL_PG_URL`, default the
 * local `test` database.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeWorkerUtils, run as runGraphile } from 'graphile-worker';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { createRuntime, postgresStore } from '../src/index.js';
import { median, ratio, type TableRow } from './harness.js';

const URL = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const N = Number(process.env.BENCH_PG_N) || 5000;
const RUNS = Math.max(1, Number(process.env.BENCH_PG_RUNS) || 3);
const CHUNK = 1000;
const BOSS_BATCH = Number(process.env.BENCH_BOSS_BATCH) || 500;

/** Runs N jobs with `workers` worker instances (each its own pool and runner), `concurrency` each; returns ms. */
type Contender = (concurrency: number, workers: number) => Promise<number>;
let seq = 0;
const schemaName = (who: string) => `bench_${who}_${process.pid}_${++seq}`;

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

function finished(): { tick: () => void; job: () => Promise<void>; all: Promise<void>; count: () => number } {
  let done = 0;
  let resolve!: () => void;
  const all = new Promise<void>((r) => (resolve = r));
  return {
    tick: () => {
      if (++done === N) resolve();
    },
    /** One async no-op job, as a handler awaited one after the other runs it. */
    job: async () => {
      if (++done === N) resolve();
    },
    all,
    count: () => done,
  };
}

const keel: Contender = async (concurrency, workers) => {
  const schema = schemaName('keel');
  const f = finished();
  const rts = Array.from({ length: workers }, () =>
    createRuntime({ store: postgresStore({ connectionString: URL, schema }) }),
  );
  const qs = rts.map((rt) => rt.queue('bench', { concurrency, paused: true, handler: () => f.tick() }));
  for (const rt of rts) await rt.start();
  const q = qs[0]!;
  try {
    const t0 = performance.now();
    for (let i = 0; i < N; i += CHUNK) {
      const chunk: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(N, i + CHUNK); j++) chunk.push(q.enqueue({ i: j }));
      await Promise.all(chunk);
    }
    for (const each of qs) each.resume();
    await f.all;
    await q.drain();
    return performance.now() - t0;
  } finally {
    for (const rt of rts) await rt.stop();
    await dropSchema(schema);
  }
};

const graphile: Contender = async (concurrency, workers) => {
  const schema = schemaName('gw');
  const utils = await makeWorkerUtils({ connectionString: URL, schema });
  await utils.migrate();
  const f = finished();
  try {
    const t0 = performance.now();
    for (let i = 0; i < N; i += CHUNK) {
      const specs = [];
      for (let j = i; j < Math.min(N, i + CHUNK); j++) specs.push({ identifier: 'bench', payload: { i: j } });
      await utils.addJobs(specs);
    }
    const runners = await Promise.all(
      Array.from({ length: workers }, () =>
        runGraphile({
          connectionString: URL,
          schema,
          concurrency,
          noHandleSignals: true,
          pollInterval: 1000,
          logger: silentLogger(),
          taskList: {
            bench: async () => {
              f.tick();
            },
          },
        }),
      ),
    );
    await f.all;
    const ms = performance.now() - t0;
    for (const runner of runners) await runner.stop();
    return ms;
  } finally {
    await utils.release();
    await dropSchema(schema);
  }
};

const pgBoss: Contender = async (concurrency, workers) => {
  const schema = schemaName('boss');
  const bosses = Array.from(
    { length: workers },
    () => new PgBoss({ connectionString: URL, schema, supervise: false, schedule: false }),
  );
  for (const b of bosses) {
    b.on('error', () => {});
    await b.start();
  }
  const boss = bosses[0]!;
  await boss.createQueue('bench');
  const f = finished();
  try {
    const t0 = performance.now();
    for (let i = 0; i < N; i += CHUNK) {
      const jobs = [];
      for (let j = i; j < Math.min(N, i + CHUNK); j++) jobs.push({ name: 'bench', data: { i: j } });
      await boss.insert(jobs);
    }
    for (const b of bosses) {
      await b.work('bench', { batchSize: BOSS_BATCH, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        let next = 0;
        const lane = async () => {
          while (next < jobs.length) {
            next++;
            await f.job();
          }
        };
        await Promise.all(Array.from({ length: concurrency }, lane));
      });
    }
    await f.all;
    return performance.now() - t0;
  } finally {
    for (const b of bosses) await b.stop({ graceful: false, wait: true });
    await dropSchema(schema);
  }
};

/** Puts N jobs in a library's queue on `schema` (set up first, before any worker starts). */
interface Producer {
  enqueue(): Promise<void>;
  close(): Promise<void>;
}

const producers: Record<string, (schema: string) => Promise<Producer>> = {
  keel: async (schema) => {
    const rt = createRuntime({ store: postgresStore({ connectionString: URL, schema }) });
    const q = rt.queue('bench');
    await rt.start();
    return {
      enqueue: async () => {
        for (let i = 0; i < N; i += CHUNK) {
          await Promise.all(Array.from({ length: Math.min(CHUNK, N - i) }, (_, j) => q.enqueue({ i: i + j })));
        }
      },
      close: () => rt.stop(),
    };
  },
  'graphile-worker': async (schema) => {
    const utils = await makeWorkerUtils({ connectionString: URL, schema });
    await utils.migrate();
    return {
      enqueue: async () => {
        for (let i = 0; i < N; i += CHUNK) {
          const specs = Array.from({ length: Math.min(CHUNK, N - i) }, (_, j) => ({
            identifier: 'bench',
            payload: { i: i + j },
          }));
          await utils.addJobs(specs);
        }
      },
      close: async () => {
        await utils.release();
      },
    };
  },
  'pg-boss': async (schema) => {
    const boss = new PgBoss({ connectionString: URL, schema, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
    await boss.createQueue('bench');
    return {
      enqueue: async () => {
        for (let i = 0; i < N; i += CHUNK) {
          await boss.insert(
            Array.from({ length: Math.min(CHUNK, N - i) }, (_, j) => ({ name: 'bench', data: { i: i + j } })),
          );
        }
      },
      close: () => boss.stop({ graceful: false, wait: true }),
    };
  },
};

const workerScript = fileURLToPath(new globalThis.URL('./_pgWorker.ts', import.meta.url));

/**
 * The same end-to-end run with `workers` worker processes (`_pgWorker.ts`),
 * each one library worker at `concurrency`; this process only enqueues and
 * counts what the workers report. Process start-up is not timed.
 */
async function inProcesses(name: string, concurrency: number, workers: number): Promise<number> {
  const schema = schemaName(`${name.replace(/[^a-z]/g, '').slice(0, 5)}p`);
  const producer = await producers[name]!(schema);
  const done = new Array<number>(workers).fill(0);
  const children: ChildProcess[] = [];
  try {
    await Promise.all(
      Array.from({ length: workers }, (_, w) => {
        const child = fork(workerScript, [name, schema, String(concurrency)], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        children.push(child);
        return new Promise<void>((resolve, reject) => {
          child.on('message', (m: { ready?: boolean; done?: number }) => {
            if (m.ready) resolve();
            if (m.done !== undefined) done[w] = m.done;
          });
          child.once('exit', (code) => reject(new Error(`${name} worker exited early (${code})`)));
        });
      }),
    );
    const t0 = performance.now();
    await producer.enqueue();
    while (done.reduce((a, b) => a + b, 0) < N) await new Promise((r) => setTimeout(r, 2));
    return performance.now() - t0;
  } finally {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || !child.connected) return resolve();
            child.once('exit', () => resolve());
            child.send('stop');
          }),
      ),
    );
    await producer.close();
    await dropSchema(schema);
  }
}

function silentLogger() {
  // graphile-worker logs every start and stop; the table is what matters here.
  return new (class {
    scope() {
      return this;
    }
    error() {}
    warn() {}
    info() {}
    debug() {}
  })() as never;
}

export async function run(): Promise<TableRow[]> {
  const contenders: Record<string, Contender> = { keel, 'graphile-worker': graphile, 'pg-boss': pgBoss };
  const rows: TableRow[] = [];
  // Two workers: two worker processes, fed by this one.
  for (const [concurrency, workers] of [
    [1, 1],
    [16, 1],
    [16, 2],
  ] as const) {
    const rates: Record<string, number[]> = {};
    const names = Object.keys(contenders);
    for (let r = 0; r < RUNS; r++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(r + k) % names.length]!;
        const ms =
          workers > 1 ? await inProcesses(name, concurrency, workers) : await contenders[name]!(concurrency, 1);
        (rates[name] ??= []).push(N / (ms / 1000));
        if (process.env.BENCH_VERBOSE) console.log(`  c=${concurrency} w=${workers} ${name}: ${ms.toFixed(0)} ms`);
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

// `npx tsx bench/queue-postgres.ts` runs it alone (npm run bench runs it through bench/run.ts).
if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import('./harness.js');
  printTable('queue-postgres', await run());
}
