/**
 * Completed 3-step sagas per second (memory, SQLite, Postgres) and heap bytes
 * per in-flight saga. In memory and on SQLite the anchors are the code users
 * write by hand instead (an async function with try/catch and an undo list)
 * and the absolute targets, shown as a fixed anchor so the ratio reads
 * "how far from it". On Postgres the anchor is DBOS Transact, the durable
 * workflow library that runs in-process on Postgres (`_dbos.ts`): the same 3
 * steps, the same database, interleaved in the same run. Database:
 * `KEEL_PG_URL`, default the local `test` database; without one the Postgres
 * rows are skipped.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createRuntime, postgresStore, type Runtime, sqliteStore } from '../src/index.js';
import { launchDbos } from './_dbos.js';
import { compare, heapBytesPer, ratio, type TableRow } from './harness.js';

const stock = { units: 1_000_000 };
const steps = [
  { name: 'createOrder', run: () => ({ orderId: 1 }), compensate: () => {} },
  {
    name: 'deductInventory',
    run: () => {
      stock.units--;
      return stock.units;
    },
    compensate: () => {
      stock.units++;
    },
  },
  { name: 'processPayment', run: () => 'paid' },
] as const;

/** The hand-written equivalent: run in order, undo the finished ones in reverse on failure. */
async function byHand(): Promise<unknown> {
  const done: Array<() => unknown> = [];
  const results: Record<string, unknown> = {};
  try {
    for (const s of steps) {
      results[s.name] = await s.run();
      if ('compensate' in s) done.push(s.compensate);
    }
    return results;
  } catch (error) {
    for (const undo of done.reverse()) await undo();
    throw error;
  }
}

async function throughput(label: string, rt: Runtime<any>, target?: number): Promise<TableRow[]> {
  const saga = rt.saga('checkout', { steps });
  await rt.start();
  let completed = 0;
  const rows = await compare({
    name: `completed 3-step sagas, ${label}, one at a time`,
    keel: async () => {
      const r = await saga.execute({ cart: 1 });
      if (r.status === 'completed') completed++;
    },
    vs: { 'hand-written try/catch': byHand },
    runs: 3,
    check: () => {
      if (completed === 0) throw new Error('no saga completed');
    },
  });
  const batch = 100;
  const concurrent = await compare({
    name: `completed 3-step sagas, ${label}, ${batch} at a time`,
    keel: () => Promise.all(Array.from({ length: batch }, () => saga.execute({ cart: 1 }))),
    vs: { 'hand-written try/catch': () => Promise.all(Array.from({ length: batch }, byHand)) },
    opsPerCall: batch,
    runs: 3,
  });
  await rt.stop();
  if (target === undefined) return [...rows, ...concurrent];
  const best = Math.max(rows[0]?.opsPerSec ?? 0, concurrent[0]?.opsPerSec ?? 0);
  const targetRow: TableRow = {
    name: `completed 3-step sagas, ${label}, best of the above`,
    opsPerSec: best,
    vs: `issue target (${target}/s)`,
    vsOpsPerSec: target,
    ratio: ratio(best, target),
    target: 1,
  };
  return [...rows, ...concurrent, targetRow];
}

const PG_URL = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function dropSchemas(...schemas: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await c.end();
  }
}

/** keel on Postgres beside DBOS Transact, one at a time and 100 at a time; both durable, same database. */
async function postgres(): Promise<TableRow[]> {
  const schema = `bench_saga_${process.pid}`;
  const dbosSchema = `bench_dbos_${process.pid}`;
  const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
  const saga = rt.saga('checkout', { steps });
  const dbos = await launchDbos(PG_URL, dbosSchema, steps);
  try {
    await rt.start();
    let completed = 0;
    const keel = async () => {
      const r = await saga.execute({ cart: 1 });
      if (r.status === 'completed') completed++;
    };
    const vs = 'DBOS Transact (postgres)';
    const rows = await compare({
      name: 'completed 3-step sagas, postgres, one at a time',
      keel,
      vs: { [vs]: () => dbos.checkout({ cart: 1 }) },
      runs: 3,
      target: 1,
      check: () => {
        if (completed === 0) throw new Error('no saga completed');
      },
    });
    const batch = 100;
    rows.push(
      ...(await compare({
        name: `completed 3-step sagas, postgres, ${batch} at a time`,
        keel: () => Promise.all(Array.from({ length: batch }, keel)),
        vs: { [vs]: () => Promise.all(Array.from({ length: batch }, () => dbos.checkout({ cart: 1 }))) },
        opsPerCall: batch,
        runs: 3,
        target: 1,
      })),
    );
    return rows;
  } finally {
    await rt.stop();
    await dbos.shutdown();
    await dropSchemas(schema, dbosSchema);
  }
}

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Runs the saga benchmarks. */
export async function run(): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  rows.push(...(await throughput('memory', createRuntime(), 20_000)));
  // The same runner; inspected, it also keeps a mirror actor per saga in the system (no target: a debugging mode).
  rows.push(...(await throughput('memory, inspected', createRuntime({ inspect: () => {} }))));
  const path = join(tmpdir(), `keel-bench-saga-${process.pid}.db`);
  try {
    rows.push(...(await throughput('sqlite', createRuntime({ store: sqliteStore({ path }) }), 5_000)));
  } finally {
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  }
  if (await pgReachable()) rows.push(...(await postgres()));
  else console.warn(`saga: skipping the Postgres rows, ${PG_URL} is not reachable`);

  const rt = createRuntime();
  const hang = rt.saga('inflight', {
    shutdownGraceMs: 0,
    steps: [
      { name: 'reserve', run: () => 1, compensate: () => {} },
      { name: 'wait', run: () => new Promise(() => {}) },
    ],
  });
  await rt.start();
  const bytes = await heapBytesPer(
    () => {
      hang.execute({ cart: 1 }).catch(() => {});
    },
    { count: 10_000, samples: 3 },
  );
  await rt.stop();
  const handBytes = await heapBytesPer(
    () => {
      // What a hand-written saga keeps while a step hangs: its promise, results and undo list.
      // Wrapped: the harness would wait for a bare promise.
      return {
        pending: (async () => {
          const results: Record<string, unknown> = { reserve: 1 };
          const undo: Array<() => void> = [() => {}];
          await new Promise(() => {});
          return [results, undo];
        })(),
      };
    },
    { count: 10_000, samples: 3 },
  );
  rows.push(
    {
      name: 'heap bytes per in-flight saga (10,000 concurrent)',
      opsPerSec: bytes,
      vs: 'issue target (10 KB)',
      vsOpsPerSec: 10_240,
      ratio: ratio(bytes, 10_240),
      target: 1,
      lowerIsBetter: true,
    },
    {
      name: 'heap bytes per in-flight saga (10,000 concurrent)',
      opsPerSec: bytes,
      vs: 'hand-written pending async function',
      vsOpsPerSec: handBytes,
      ratio: ratio(bytes, handBytes),
      lowerIsBetter: true,
    },
  );
  return rows;
}
