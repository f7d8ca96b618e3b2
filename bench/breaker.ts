/**
 * Circuit breaker: keel's `rt.breaker(...).call` against cockatiel@3
 * (`ConsecutiveBreaker`) and opossum@9, interleaved in one process. The
 * guarded function is `async () => 42`, so what is measured is the breaker's
 * own overhead. Cases: the closed-state success path (keel with its default
 * 10 s per-call timeout, and keel without a timeout, the like-for-like match
 * for cockatiel, which has none), rejections while open, and heap bytes per
 * breaker for 10,000 breakers.
 */
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import opossumImport from 'opossum';
import { createRuntime, postgresStore } from '../src/index.js';
import { PG_URL } from './_pgTidy.js';
import { compare, compareHeap, type TableRow } from './harness.js';

// CommonJS-typed: at runtime the default import is the class itself.
const CircuitBreaker = opossumImport as unknown as typeof opossumImport;

const fn = async () => 42;
const noop = () => {};
/** Calls that reached the guarded function, per contender (the same tiny work for all). */
const reached = { keel: 0, keelNoTimeout: 0, cockatiel: 0, opossum: 0 };
const counting = (who: keyof typeof reached) => async () => {
  reached[who]++;
  return 42;
};
const HOUR = 3_600_000;

function check(name: string, ok: boolean): void {
  if (!ok) throw new Error(`${name}: the contender did not do the work it was timed for`);
}

export async function run(): Promise<TableRow[]> {
  const rt = createRuntime();
  const opossums: Array<InstanceType<typeof CircuitBreaker>> = [];
  const rows: TableRow[] = [];
  try {
    // Closed: every call succeeds.
    const keel = rt.breaker('closed');
    const keelNoTimeout = rt.breaker('closed-no-timeout', { callTimeoutMs: 0 });
    const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: HOUR, breaker: new ConsecutiveBreaker(5) });
    const opossum = new CircuitBreaker(counting('opossum'), {});
    opossums.push(opossum);
    const keelFn = counting('keel');
    const keelNoTimeoutFn = counting('keelNoTimeout');
    const cockatielFn = counting('cockatiel');

    rows.push(
      ...(await compare({
        name: 'call, closed (keel: default 10 s timeout)',
        keel: () => keel.call(keelFn),
        vs: { cockatiel: () => cockatiel.execute(cockatielFn), opossum: () => opossum.fire() },
        target: { cockatiel: 1.0 },
        check: () => {
          check('keel', reached.keel > 0 && keel.stats.successes === reached.keel && keel.stats.failures === 0);
          check('cockatiel', reached.cockatiel > 0);
          check('opossum', reached.opossum > 0 && opossum.stats.successes === reached.opossum);
        },
      })),
    );
    rows.push(
      ...(await compare({
        name: 'call, closed (keel: callTimeoutMs 0)',
        keel: () => keelNoTimeout.call(keelNoTimeoutFn),
        vs: { cockatiel: () => cockatiel.execute(cockatielFn) },
        target: { cockatiel: 1.0 },
        check: () =>
          check('keel', reached.keelNoTimeout > 0 && keelNoTimeout.stats.successes === reached.keelNoTimeout),
      })),
    );

    // Open: every call is refused. Each contender pays the same `.catch`.
    const boom = async () => {
      throw new Error('down');
    };
    const keelOpen = rt.breaker('open', { failureThreshold: 1, resetTimeoutMs: HOUR });
    await keelOpen.call(boom).catch(noop);
    const cockatielOpen = circuitBreaker(handleAll, { halfOpenAfter: HOUR, breaker: new ConsecutiveBreaker(1) });
    await cockatielOpen.execute(boom).catch(noop);
    const opossumOpen = new CircuitBreaker(boom, {
      resetTimeout: HOUR,
      volumeThreshold: 0,
      errorThresholdPercentage: 1,
    });
    opossums.push(opossumOpen);
    await opossumOpen.fire().catch(noop);
    check('setup', keelOpen.state === 'open' && cockatielOpen.state === 1 && opossumOpen.opened);
    rows.push(
      ...(await compare({
        name: 'call, open (refused)',
        keel: () => keelOpen.call(fn).catch(noop),
        vs: { cockatiel: () => cockatielOpen.execute(fn).catch(noop), opossum: () => opossumOpen.fire().catch(noop) },
        target: { cockatiel: 5 },
        check: () => {
          check('keel', keelOpen.stats.rejections > 0 && keelOpen.stats.successes === 0 && keelOpen.state === 'open');
          check('cockatiel', cockatielOpen.state === 1);
          check('opossum', opossumOpen.stats.rejects > 0 && opossumOpen.stats.successes === 0);
        },
      })),
    );

    rows.push(...(await fleetRows(cockatiel, cockatielFn, cockatielOpen, fn)));

    // Memory: each measuring round gets a fresh runtime, so names do not repeat. The harness
    // may still hold the last object of a round when the next round starts, and one breaker
    // reaches its whole runtime; so each breaker sits in a holder (counted: ~16 bytes) that
    // `dispose` empties, and the previous runtime is garbage before the next first reading.
    let heapRt: ReturnType<typeof createRuntime> | undefined;
    rows.push(
      ...(await compareHeap({
        name: 'breaker (10,000 breakers)',
        count: 10_000,
        keel: (i) => {
          heapRt ??= createRuntime();
          return { breaker: heapRt.breaker(`b${i}`) as unknown };
        },
        dispose: (holder) => {
          holder.breaker = undefined;
          heapRt = undefined;
        },
        vs: {
          opossum: () => {
            const b = new CircuitBreaker(fn, {});
            opossums.push(b);
            return b;
          },
          cockatiel: () => circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
        },
        target: 1,
      })),
    );
    // Against opossum the ceiling is 1x; against cockatiel (no actor, no timers) it is informational.
    const vsCockatiel = rows.at(-1);
    if (vsCockatiel) delete vsCockatiel.target;
    return rows;
  } finally {
    for (const b of opossums) b.shutdown();
    await rt.stop();
  }
}

/**
 * A `scope: 'fleet'` breaker on Postgres (issue #18): closed calls never wait
 * on the store, and refusals are local once the open reached the process.
 * Skipped (no rows) when Postgres is not reachable at KEEL_PG_URL.
 */
async function fleetRows(
  cockatiel: { execute: (f: () => Promise<number>) => Promise<number> },
  cockatielFn: () => Promise<number>,
  cockatielOpen: { execute: (f: () => Promise<number>) => Promise<number> },
  fn: () => Promise<number>,
): Promise<TableRow[]> {
  const url = PG_URL;
  const schema = `keel_bench_fleet_${process.pid}`;
  const rt = createRuntime({
    store: postgresStore({ connectionString: url, schema, poolSize: 2, connectTimeoutMs: 1000 }),
  });
  try {
    await rt.start();
  } catch {
    console.log('breaker bench: no Postgres reachable, fleet rows skipped');
    await rt.stop().catch(() => {});
    return [];
  }
  const rows: TableRow[] = [];
  try {
    const closed = rt.breaker('fleet-closed', { scope: 'fleet' });
    const open = rt.breaker('fleet-open', {
      scope: 'fleet',
      failureThreshold: 1,
      resetTimeoutMs: HOUR,
      fleetSyncMs: 1,
    });
    while (closed.stats.fleet !== 'joined' || open.stats.fleet !== 'joined') await new Promise((r) => setTimeout(r, 5));
    await open
      .call(async () => {
        throw new Error('down');
      })
      .catch(noop);
    while (open.state !== 'open') await new Promise((r) => setTimeout(r, 5));
    let reachedFleet = 0;
    const fleetFn = async () => {
      reachedFleet++;
      return 42;
    };
    rows.push(
      ...(await compare({
        name: "call, closed (keel: scope 'fleet' on Postgres)",
        keel: () => closed.call(fleetFn),
        vs: { cockatiel: () => cockatiel.execute(cockatielFn) },
        target: { cockatiel: 1.0 },
        check: () => check('keel fleet', reachedFleet > 0 && closed.stats.successes === reachedFleet),
      })),
    );
    rows.push(
      ...(await compare({
        name: "call, open (refused; keel: scope 'fleet' on Postgres)",
        keel: () => open.call(fn).catch(noop),
        vs: { cockatiel: () => cockatielOpen.execute(fn).catch(noop) },
        target: { cockatiel: 5 },
        check: () => check('keel fleet', open.stats.rejections > 0 && open.state === 'open'),
      })),
    );
  } finally {
    await rt.stop();
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
  }
  return rows;
}
