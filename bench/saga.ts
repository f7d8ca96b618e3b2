/**
 * Completed 3-step sagas per second (memory, SQLite, Postgres) and heap bytes
 * per in-flight saga. In memory and on SQLite the anchors are the code users
 * write by hand instead (an async function with try/catch and an undo list)
 * and the issue's absolute targets, shown as a fixed anchor so the ratio reads
 * "how far from it". On Postgres the anchor is DBOS Transact, the durable
 * workflow library that runs in-process on Postgres (`_dbos.ts`): the same 3
 * steps, the same database, interleaved in the same run, once with DBOS's
 * defaults and once tuned as its option docs say (`_dbos.ts` TUNED).
 *
 * Issue #17's constructs get rows of their own: a saga of one step, a
 * parallel pair and a zero-length durable sleep (DBOS: two `runStep` under
 * `Promise.all`, then `DBOS.sleep(0)`), and a signal round trip (execute a
 * saga that waits for `payment.confirmed`, signal it, await the end; DBOS:
 * `startWorkflow`, `DBOS.send`, `DBOS.recv`, `getResult`). Database:
 * `KEEL_PG_URL`, default the local `test` database; without one the Postgres
 * rows are skipped.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createRuntime, postgresStore, type Runtime, sqliteStore } from '../src/index.js';
import { type DbosApp, type DbosSetup, launchDbos } from './_dbos.js';
import { PG_URL } from './_pgTidy.js';
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

/** Issue #17's shape: createOrder, then deductInventory and processPayment at once, then a zero-length sleep. */
const pair = [steps[1], { name: 'processPayment', run: () => 'paid', compensate: () => {} }] as const;
const shapedSteps = [
  steps[0],
  { name: 'reserveAndAuthorise', parallel: [...pair] },
  { name: 'pause', sleepMs: 0 },
] as const;
/** A step, then the wait for a signal. */
const SIGNAL = 'payment.confirmed';
const signalSteps = [steps[0], { name: 'paid', waitFor: SIGNAL }] as const;
const dbosSteps = { checkout: steps, first: steps[0], pair };

/** The hand-written shaped saga: the pair under Promise.all, a zero-length timer, the undo list as in `byHand`. */
async function byHandShaped(): Promise<unknown> {
  const done: Array<() => unknown> = [];
  const results: Record<string, unknown> = {};
  try {
    results.createOrder = await steps[0].run();
    done.push(steps[0].compensate);
    const [a, b] = await Promise.all(pair.map((s) => s.run()));
    results.deductInventory = a;
    results.processPayment = b;
    done.push(...pair.map((s) => s.compensate));
    await new Promise((r) => setTimeout(r, 0));
    return results;
  } catch (error) {
    for (const undo of done.reverse()) await undo();
    throw error;
  }
}

/** A hand-written signal: a message kept when it comes early, else handed to the waiter. */
function handSignals() {
  const kept = new Map<number, unknown>();
  const waiters = new Map<number, (v: unknown) => void>();
  let next = 0;
  const send = (id: number, v: unknown) => {
    const w = waiters.get(id);
    if (w) {
      waiters.delete(id);
      w(v);
    } else kept.set(id, v);
  };
  const recv = (id: number) =>
    kept.has(id) ? Promise.resolve(kept.get(id)) : new Promise<unknown>((r) => waiters.set(id, r));
  return async () => {
    const id = ++next;
    const run = (async () => {
      const created = await steps[0].run();
      const paid = await recv(id);
      kept.delete(id);
      return { created, paid };
    })();
    send(id, { ok: true });
    return run;
  };
}

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

/** keel's ops for issue #17's shapes on `rt` (registered before it starts). */
function shapedSagas(rt: Runtime<any>) {
  const shaped = rt.saga('shaped', { steps: shapedSteps });
  const signalled = rt.saga('signalled', { steps: signalSteps });
  let completed = 0;
  let asked = 0;
  let n = 0;
  return {
    parallelSleep: async () => {
      asked++;
      if ((await shaped.execute({ cart: 1 })).status === 'completed') completed++;
    },
    signalRoundTrip: async () => {
      asked++;
      const id = `sig-${process.pid}-${++n}`;
      const run = signalled.execute({ cart: 1 }, { id });
      await signalled.signal(id, SIGNAL, { ok: true });
      if ((await run).status === 'completed') completed++;
    },
    check: () => {
      if (completed !== asked) throw new Error(`${completed} of ${asked} shaped sagas completed`);
    },
  };
}

type ShapedOps = ReturnType<typeof shapedSagas>;
type Anchor = { parallelSleep: () => Promise<unknown>; signalRoundTrip: () => Promise<unknown> };

/** Rows of issue #17's shapes: one at a time against each anchor; with `batch`, also that many at a time. */
async function shapedRows(
  label: string,
  keel: ShapedOps,
  anchors: Record<string, Anchor>,
  options: { target?: number; batch?: number } = {},
): Promise<TableRow[]> {
  const pick = (k: keyof Anchor) => Object.fromEntries(Object.entries(anchors).map(([name, a]) => [name, a[k]]));
  const rows = [
    ...(await compare({
      name: `saga: step, parallel pair, sleep 0; ${label}, one at a time`,
      keel: keel.parallelSleep,
      vs: pick('parallelSleep'),
      runs: 3,
      ...(options.target !== undefined && { target: options.target }),
      check: keel.check,
    })),
    ...(await compare({
      name: `saga: step, signal round trip; ${label}, one at a time`,
      keel: keel.signalRoundTrip,
      vs: pick('signalRoundTrip'),
      runs: 3,
      ...(options.target !== undefined && { target: options.target }),
      check: keel.check,
    })),
  ];
  const batch = options.batch;
  if (batch !== undefined) {
    const many = (op: () => Promise<unknown>) => () => Promise.all(Array.from({ length: batch }, op));
    rows.push(
      ...(await compare({
        name: `saga: step, parallel pair, sleep 0; ${label}, ${batch} at a time`,
        keel: many(keel.parallelSleep),
        vs: Object.fromEntries(Object.entries(anchors).map(([name, a]) => [name, many(a.parallelSleep)])),
        opsPerCall: batch,
        runs: 3,
        ...(options.target !== undefined && { target: options.target }),
        check: keel.check,
      })),
    );
  }
  return rows;
}

async function throughput(label: string, rt: Runtime<any>, target?: number): Promise<TableRow[]> {
  const saga = rt.saga('checkout', { steps });
  const shaped = shapedSagas(rt);
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
  const hand = { parallelSleep: byHandShaped, signalRoundTrip: handSignals() };
  const shapes = await shapedRows(label, shaped, { 'hand-written async function': hand });
  await rt.stop();
  if (target === undefined) return [...rows, ...concurrent, ...shapes];
  const best = Math.max(rows[0]?.opsPerSec ?? 0, concurrent[0]?.opsPerSec ?? 0);
  const targetRow: TableRow = {
    name: `completed 3-step sagas, ${label}, best of the above`,
    opsPerSec: best,
    vs: `issue target (${target}/s)`,
    vsOpsPerSec: target,
    ratio: ratio(best, target),
    target: 1,
  };
  return [...rows, ...concurrent, targetRow, ...shapes];
}

async function dropSchemas(...schemas: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await c.end();
  }
}

/** DBOS's name in the rows, by setup. */
const DBOS_NAME: Record<DbosSetup, string> = {
  default: 'DBOS Transact (postgres, defaults)',
  tuned: 'DBOS Transact (postgres, tuned)',
};

/**
 * keel on Postgres beside DBOS Transact, one at a time and 100 at a time; both
 * durable, same database. DBOS is one per process, so it runs twice: with its
 * defaults, then tuned; keel (defaults) is measured beside each.
 */
async function postgres(): Promise<TableRow[]> {
  const schema = `bench_saga_${process.pid}`;
  const dbosSchema = `bench_dbos_${process.pid}`;
  const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
  const saga = rt.saga('checkout', { steps });
  const shaped = shapedSagas(rt);
  let dbos: DbosApp | undefined;
  try {
    await rt.start();
    let completed = 0;
    const keel = async () => {
      const r = await saga.execute({ cart: 1 });
      if (r.status === 'completed') completed++;
    };
    const rows: TableRow[] = [];
    for (const how of ['default', 'tuned'] as const) {
      const app = await launchDbos(PG_URL, dbosSchema, dbosSteps, how);
      dbos = app;
      const vs = DBOS_NAME[how];
      rows.push(
        ...(await compare({
          name: 'completed 3-step sagas, postgres, one at a time',
          keel,
          vs: { [vs]: () => app.checkout({ cart: 1 }) },
          runs: 3,
          target: 1,
          check: () => {
            if (completed === 0) throw new Error('no saga completed');
          },
        })),
      );
      const batch = 100;
      rows.push(
        ...(await compare({
          name: `completed 3-step sagas, postgres, ${batch} at a time`,
          keel: () => Promise.all(Array.from({ length: batch }, keel)),
          vs: { [vs]: () => Promise.all(Array.from({ length: batch }, () => app.checkout({ cart: 1 }))) },
          opsPerCall: batch,
          runs: 3,
          target: 1,
        })),
      );
      const anchor = {
        parallelSleep: () => app.parallelSleep({ cart: 1 }),
        signalRoundTrip: () => app.signalRoundTrip({ cart: 1 }),
      };
      rows.push(...(await shapedRows('postgres', shaped, { [vs]: anchor }, { target: 1, batch })));
      await app.shutdown();
      dbos = undefined;
    }
    return rows;
  } finally {
    await rt.stop();
    await dbos?.shutdown();
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
