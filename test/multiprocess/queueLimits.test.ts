import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import type { NewTask } from '../../src/stores/store.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';
import { eachLine, until } from '../fixtures/wait.js';

const worker = join(import.meta.dirname, '../fixtures/queueLimitsWorker.ts');

interface Run {
  n: number;
  group: string;
  pid: number;
  start: number;
  end: number | undefined;
}

/** Three worker processes on one schema, all with `options`; resolves once every one is ready. */
async function fleet(schema: string, options: object, runs: Map<number, Run[]>): Promise<ChildProcess[]> {
  const procs: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < 3; i++) {
    const proc = spawn(process.execPath, ['--import', 'tsx', worker, PG_URL, schema, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(proc);
    ready.push(
      new Promise<void>((resolve) =>
        eachLine(proc.stdout!, (line) => {
          if (line === 'READY') return resolve();
          const [kind, n, group, pid, t] = line.split(' ');
          const list = runs.get(Number(n)) ?? [];
          runs.set(Number(n), list);
          if (kind === 'S')
            list.push({ n: Number(n), group: group!, pid: Number(pid), start: Number(t), end: undefined });
          else list.find((r) => r.pid === Number(pid) && r.end === undefined)!.end = Number(t);
        }),
      ),
    );
  }
  await Promise.all(ready);
  return procs;
}

/** The most runs of `runs` at once: an end at the same instant as a start comes first (it was settled before). */
function maxOverlap(runs: readonly Run[]): number {
  const events = runs.flatMap((r) => [
    { t: r.start, d: 1 },
    { t: r.end!, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of events) {
    now += e.d;
    max = Math.max(max, now);
  }
  return max;
}

/** The most starts in any window of `perMs` (a window starting at each start). */
function maxStartsPer(runs: readonly Run[], perMs: number): number {
  const starts = runs.map((r) => r.start).sort((a, b) => a - b);
  let max = 0;
  let j = 0;
  for (let i = 0; i < starts.length; i++) {
    while (j < starts.length && starts[j]! < starts[i]! + perMs) j++;
    max = Math.max(max, j - i);
  }
  return max;
}

describe.skipIf(!pgAvailable)('fleet-wide queue limits: three processes on one Postgres schema', () => {
  let schema = '';
  let procs: ChildProcess[] = [];
  afterEach(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => (p.exitCode === null ? new Promise((r) => p.on('exit', r)) : undefined)));
    procs = [];
    await dropSchema(schema);
  });

  /** Enqueues `tasks` on a fresh schema, starts the fleet and waits until every task ended once. */
  async function runAll(tasks: NewTask[], options: object): Promise<Run[]> {
    schema = uniqueSchema('lim');
    const store = postgresStore({ connectionString: PG_URL, schema });
    await store.open();
    try {
      for (let i = 0; i < tasks.length; i += 1000) await store.enqueue('lim', tasks.slice(i, i + 1000), Date.now());
    } finally {
      await store.close();
    }
    const runs = new Map<number, Run[]>();
    procs = await fleet(schema, options, runs);
    const done = () => [...runs.values()].reduce((n, l) => n + l.filter((r) => r.end !== undefined).length, 0);
    await until(() => done() >= tasks.length, 90_000, `all ${tasks.length} tasks`);
    const all = [...runs.values()].flat();
    // Each task ran exactly once: nothing was handed out twice to squeeze past a limit.
    expect(runs.size).toBe(tasks.length);
    expect(all).toHaveLength(tasks.length);
    // The work was shared: every process ran some.
    expect(new Set(all.map((r) => r.pid)).size).toBe(3);
    return all;
  }

  it('5,000 tasks: the handlers never see more than globalConcurrency running or rateLimit started', {
    timeout: 120_000,
  }, async () => {
    const options = { globalConcurrency: 6, rateLimit: { max: 50, perMs: 250 } };
    const tasks = Array.from({ length: 5000 }, (_, n) => ({ payload: JSON.stringify({ n }), runAt: 0 }));
    const all = await runAll(tasks, options);
    const overlap = maxOverlap(all);
    expect(overlap).toBeLessThanOrEqual(6);
    // The limit was reached (12 workers in all), so the bound above was tested, not idle.
    expect(overlap).toBe(6);
    // Within any 250 ms window of claims at most 50 (the store's guarantee, test/stores/claimContract.ts), counted
    // at the time each claim was asked. A handler starts after its claim's round trip, and a claim may first queue
    // for the limits lock behind the other processes' claims: on a loaded machine (this suite runs beside others)
    // that delay varies by more than the queue's 50 ms start slack (51 starts in 200 ms were seen in CI), so
    // starts are counted in windows 100 ms shorter.
    const starts = maxStartsPer(all, 150);
    expect(starts).toBeLessThanOrEqual(50);
    // The rate limit was what held the fleet back at times (not only the concurrency).
    expect(maxStartsPer(all, 250)).toBeGreaterThanOrEqual(45);
  });

  it("groupConcurrency 1: one user's tasks run one at a time in enqueue order, fleet-wide; users in parallel", {
    timeout: 120_000,
  }, async () => {
    const users = 40;
    const tasks = Array.from({ length: 1200 }, (_, n) => ({
      payload: JSON.stringify({ n, g: `u${n % users}` }),
      runAt: 0,
      group: `u${n % users}`,
    }));
    const all = await runAll(tasks, { groupConcurrency: 1 });
    const byGroup = new Map<string, Run[]>();
    for (const r of all) byGroup.set(r.group, [...(byGroup.get(r.group) ?? []), r]);
    for (const [g, runs] of byGroup) {
      runs.sort((a, b) => a.start - b.start);
      expect(maxOverlap(runs), g).toBe(1);
      expect(
        runs.map((r) => r.n),
        g,
      ).toEqual([...runs.map((r) => r.n)].sort((a, b) => a - b));
    }
    expect(maxOverlap(all)).toBeGreaterThan(4);
  });
});
