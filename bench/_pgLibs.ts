/**
 * The three Postgres queues of `bench/queue-postgres.ts`, each as a producer
 * (puts jobs in) and a worker (runs no-op jobs), so the same code runs a
 * worker in the benchmark's process or in a child (`_pgWorker.ts`).
 * (`_`: not a benchmark of its own.)
 */
import { makeWorkerUtils, run as runGraphile } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { createRuntime, postgresStore } from '../src/index.js';

export { PG_URL } from './_pgTidy.js';

import { PG_URL } from './_pgTidy.js';
/**
 * `keel` and `graphile-worker` run in their defaults (keel's default `batchSize` cap of 500 is the size of
 * graphile-worker batched's local queue); `graphile-worker batched` in its documented high-throughput
 * configuration (a local queue of 500 jobs fetched at once, completions and failures batched with no delay).
 */
export const LIBS = ['keel', 'graphile-worker', 'graphile-worker batched', 'pg-boss'] as const;
/** The most tasks keel claims per store call by default (`batchSize`). */
export const KEEL_BATCH = 500;
export type Lib = (typeof LIBS)[number];

const CHUNK = 1000;
// pg-boss 10 sleeps its polling interval (>= 0.5 s) after every fetch: it gets big batches, run `concurrency` at once.
const BOSS_BATCH = Number(process.env.BENCH_BOSS_BATCH) || 500;

/** Puts jobs in a library's queue on a schema it set up (before any worker starts). */
export interface Producer {
  enqueue(n: number): Promise<void>;
  close(): Promise<void>;
}

/** Sets up `lib`'s queue on `schema` and returns its producer. */
export async function producer(lib: Lib, schema: string): Promise<Producer> {
  const chunks = async (n: number, put: (from: number, count: number) => Promise<unknown>) => {
    for (let i = 0; i < n; i += CHUNK) await put(i, Math.min(CHUNK, n - i));
  };
  if (lib === 'keel') {
    const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
    const q = rt.queue('bench');
    await rt.start();
    return {
      enqueue: (n) => chunks(n, (i, c) => Promise.all(Array.from({ length: c }, (_, j) => q.enqueue({ i: i + j })))),
      close: () => rt.stop(),
    };
  }
  if (lib === 'graphile-worker' || lib === 'graphile-worker batched') {
    const utils = await makeWorkerUtils({ connectionString: PG_URL, schema });
    await utils.migrate();
    return {
      enqueue: (n) =>
        chunks(n, (i, c) =>
          utils.addJobs(Array.from({ length: c }, (_, j) => ({ identifier: 'bench', payload: { i: i + j } }))),
        ),
      close: async () => {
        await utils.release();
      },
    };
  }
  const boss = new PgBoss({ connectionString: PG_URL, schema, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue('bench');
  return {
    enqueue: (n) =>
      chunks(n, (i, c) => boss.insert(Array.from({ length: c }, (_, j) => ({ name: 'bench', data: { i: i + j } })))),
    close: () => boss.stop({ graceful: false, wait: true }),
  };
}

/** Starts one `lib` worker on `schema` running `job` per job, `concurrency` at once; resolves with its stop function. */
export async function startWorker(
  lib: Lib,
  schema: string,
  concurrency: number,
  job: () => Promise<void>,
  bossBatch = BOSS_BATCH,
): Promise<() => Promise<void>> {
  if (lib === 'keel') {
    const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
    rt.queue('bench', { concurrency, handler: job });
    await rt.start();
    return () => rt.stop();
  }
  if (lib === 'graphile-worker' || lib === 'graphile-worker batched') {
    const runner = await runGraphile({
      connectionString: PG_URL,
      schema,
      concurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      logger: silentLogger(),
      taskList: { bench: job },
      ...(lib === 'graphile-worker batched' && {
        preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      }),
    });
    return () => runner.stop();
  }
  const boss = new PgBoss({ connectionString: PG_URL, schema, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  await boss.work('bench', { batchSize: bossBatch, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    let next = 0;
    const lane = async () => {
      while (next < jobs.length) {
        next++;
        await job();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  });
  return () => boss.stop({ graceful: false, wait: true });
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
