import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { eachLine } from '../fixtures/wait.js';
import { FLEET_TEST_OPTIONS as O } from './breakerFleetOptions.js';

const worker = join(import.meta.dirname, 'breakerFleetWorker.ts');
const PROCESSES = 3;
const RUN_MS = 3000;
const schemas = freshSchemas('bfleet');

/** A provider that never answers: every request hangs until the caller gives up. */
async function hangingProvider() {
  const arrivals: number[] = [];
  const server = createServer((req) => {
    arrivals.push(Date.now());
    req.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    arrivals,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Run {
  /** Provider requests per open period: the first span ends at the first open. */
  perPeriod: number[];
  total: number;
}

async function run(scope: 'fleet' | 'process'): Promise<Run> {
  const provider = await hangingProvider();
  const schema = schemas();
  const opened: number[] = [];
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  const done: Promise<void>[] = [];
  try {
    for (let i = 0; i < PROCESSES; i++) {
      const proc = spawn(
        process.execPath,
        ['--import', 'tsx', worker, PG_URL, schema, provider.url, scope, String(RUN_MS)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      children.push(proc);
      let markReady!: () => void;
      let markDone!: () => void;
      ready.push(new Promise((r) => (markReady = r)));
      done.push(new Promise((r) => (markDone = r)));
      eachLine(proc.stdout!, (line) => {
        if (line === 'READY') markReady();
        else if (line.startsWith('OPENED ')) opened.push(Number(line.slice(7)));
        else if (line.startsWith('DONE ')) markDone();
      });
    }
    await Promise.all(ready);
    await Promise.all(done);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await provider.close();
  }
  // Opens of one period reach the processes within a few ms of each other: one period per cluster.
  const starts: number[] = [];
  for (const t of opened.sort((a, b) => a - b))
    if (starts.length === 0 || t - (starts.at(-1) as number) > 100) starts.push(t);
  const bounds = [...starts, Number.POSITIVE_INFINITY];
  const perPeriod = bounds.map(
    (end, i) => provider.arrivals.filter((a) => a < end && (i === 0 || a >= (bounds[i - 1] as number))).length,
  );
  return { perPeriod, total: provider.arrivals.length };
}

describe.skipIf(!pgAvailable)('three processes, one hanging provider', () => {
  it("with scope 'fleet' the provider sees at most failureThreshold + halfOpenMaxCalls calls per open period (plus the sync delay's)", {
    timeout: 60_000,
  }, async () => {
    const fleet = await run('fleet');
    const local = await run('process');
    const bound = O.failureThreshold + O.halfOpenMaxCalls;
    console.log(
      `provider calls per open period, ${PROCESSES} processes, ${RUN_MS} ms: fleet ${fleet.perPeriod.join(' ')} (total ${fleet.total}); local breakers ${local.perPeriod.join(' ')} (total ${local.total}); bound ${bound} per period + 1 per process in the first (the delay)`,
    );
    expect(fleet.perPeriod.length).toBeGreaterThanOrEqual(3);
    // The first period: the failures that open it, plus one call per process started within the sync delay.
    expect(fleet.perPeriod[0]).toBeLessThanOrEqual(bound + PROCESSES);
    for (const n of fleet.perPeriod.slice(1)) expect(n).toBeLessThanOrEqual(bound);
    // After the first, the fleet probes with halfOpenMaxCalls trials per period, the local breakers with one each.
    const later = (r: Run) => r.perPeriod.slice(1, -1);
    expect(Math.max(...later(fleet))).toBeLessThanOrEqual(O.halfOpenMaxCalls);
    expect(local.total).toBeGreaterThan(fleet.total);
  });
});
