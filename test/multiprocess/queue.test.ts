import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema, withClient } from '../fixtures/pg.js';
import { SLOW_MS } from '../fixtures/queueWorkerTiming.js';
import { eachLine, until } from '../fixtures/wait.js';

const TOTAL = 5000;
// Long enough that a live process, slowed by a loaded machine, still renews in time.
const LEASE_MS = 2000;
const worker = join(import.meta.dirname, '../fixtures/queueWorker.ts');

interface Delivery {
  n: number;
  pid: number;
  start: number;
  end: number | undefined;
}

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  exited: Promise<NodeJS.Signals | number | null>;
}

/** Every delivery any child reported, keyed by task then in report order. */
const deliveries = new Map<number, Delivery[]>();
let ended = 0;

function startChild(schema: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', worker, PG_URL, schema, String(LEASE_MS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  eachLine(proc.stdout!, (line) => {
    if (line === 'READY') {
      markReady();
      return;
    }
    const [kind, n, pid, t] = line.split(' ');
    const list = deliveries.get(Number(n)) ?? [];
    deliveries.set(Number(n), list);
    if (kind === 'S') list.push({ n: Number(n), pid: Number(pid), start: Number(t), end: undefined });
    else if (kind === 'E') {
      const d = list.find((x) => x.pid === Number(pid) && x.end === undefined);
      if (d) d.end = Number(t);
      ended++;
    }
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    proc.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  return { proc, ready, exited };
}

describe.skipIf(!pgAvailable)('three processes share one Postgres queue while one is SIGKILLed', () => {
  const schema = uniqueSchema('mp');
  const children: Child[] = [];
  afterAll(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await dropSchema(schema);
  });

  it('delivers every task, and never to two live processes at once', { timeout: 90_000 }, async () => {
    const store = postgresStore({ connectionString: PG_URL, schema });
    await store.open();
    for (let i = 0; i < TOTAL; i += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => ({ payload: JSON.stringify({ n: i + j }), runAt: 0 }));
      await store.enqueue('mp', batch, Date.now());
    }
    for (let i = 0; i < 3; i++) children.push(startChild(schema));
    await Promise.all(children.map((c) => c.ready));

    const victim = children[0]!;
    // Kill it mid-work, a quarter done, while it runs a slow task (SLOW_MS) that started so recently
    // that its handler cannot have returned yet, however far behind this test reads the pipes:
    // else a run between claims would prove nothing about lease hand-over.
    const freshSlowOnVictim = () =>
      [...deliveries.values()].some((l) =>
        l.some(
          (d) =>
            d.pid === victim.proc.pid && d.end === undefined && d.n % 100 === 0 && Date.now() - d.start < SLOW_MS / 3,
        ),
      );
    await until(
      () => ended >= TOTAL / 4 && freshSlowOnVictim(),
      30_000,
      'a quarter done and a slow task on the victim',
    );
    victim.proc.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await victim.exited).toBe('SIGKILL');
    const victimPid = victim.proc.pid!;
    const heldAtKill = [...deliveries.values()].filter((l) =>
      l.some((d) => d.pid === victimPid && d.end === undefined),
    );
    expect(heldAtKill.length).toBeGreaterThan(0);

    await until(
      () => [...deliveries.values()].filter((l) => l.some((d) => d.end !== undefined)).length === TOTAL,
      30_000,
      'every task',
    );
    // An `E` line is printed before its task is settled: let the last settles land.
    let stats = await store.stats('mp', Date.now());
    // Up to 30 s: a task the victim finished but never settled comes back only after its lease (2 s) ran out.
    for (let i = 0; i < 600 && (stats.succeeded < TOTAL || stats.active > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      stats = await store.stats('mp', Date.now());
    }
    const stuck =
      stats.active > 0
        ? await withClient((c) =>
            c.query(
              `SELECT id, payload, attempt, lease_token, lease_until, updated_at FROM "${schema}".tasks WHERE state = 'active'`,
            ),
          )
        : undefined;
    await store.close();
    const stuckDeliveries = stuck?.rows.map((r: { payload: string }) => deliveries.get(JSON.parse(r.payload).n));
    expect(
      stats,
      `still active at ${Date.now()}: ${JSON.stringify(stuck?.rows)}; deliveries ${JSON.stringify(stuckDeliveries)}; victim ${victim.proc.pid} killed at ${killedAt}`,
    ).toEqual({
      pending: 0,
      active: 0,
      retrying: 0,
      succeeded: TOTAL,
      dead: 0,
      cancelled: 0,
    });

    let rerun = 0;
    for (let n = 0; n < TOTAL; n++) {
      const list = (deliveries.get(n) ?? []).sort((a, b) => a.start - b.start);
      expect(list.length, `task ${n}`).toBeGreaterThan(0);
      for (let i = 1; i < list.length; i++) {
        rerun++;
        const before = list[i - 1]!;
        const next = list[i]!;
        // Only the victim's tasks run again (live processes kept their leases), and only after it died.
        expect(before.pid, `task ${n} re-run after a live holder`).toBe(victimPid);
        expect(next.start, `task ${n}`).toBeGreaterThanOrEqual(killedAt);
        expect(next.pid).not.toBe(victimPid);
      }
    }
    expect(rerun).toBeGreaterThanOrEqual(heldAtKill.length);
  });
});
