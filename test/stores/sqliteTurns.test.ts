import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteStore } from '../../src/index.js';
import { prepareTurns } from '../../src/stores/sqlite/turns.js';
import type { ClaimLimits, NewTask } from '../../src/stores/store.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

/** A connection that counts the statements it runs (each `run`, `get`, `all` or `iterate`). */
function counting(path: string): { db: Database.Database; statements: () => number } {
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  let n = 0;
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const st = prepare(sql) as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const m of ['run', 'get', 'all', 'iterate']) {
      const f = st[m]!.bind(st);
      st[m] = (...args: unknown[]) => {
        n++;
        return f(...args);
      };
    }
    return st;
  }) as unknown as typeof db.prepare;
  return { db, statements: () => n };
}

const t = (n: number, group?: string, priority = 0): NewTask => ({
  payload: JSON.stringify(n),
  runAt: 0,
  priority,
  ...(group !== undefined && { group }),
});

/**
 * Issue #15, the cost of the SQLite turns: a claim across many groups runs a
 * few statements per chunk of groups, never one (or more) per group. Counted,
 * not timed.
 */
describe('sqlite turns: statements per claim', () => {
  const paths: string[] = [];
  afterEach(() => {
    for (const p of paths.splice(0)) removeDb(p);
  });

  /** 200 groups of 2 tasks (enqueued interleaved) and 10 tasks without a group; the turns on a counting connection. */
  async function backlog() {
    const path = `${tempPath('turns')}.db`;
    paths.push(path);
    const store = sqliteStore({ path });
    await store.open();
    const tasks: NewTask[] = [];
    for (let round = 0; round < 2; round++) for (let g = 0; g < 200; g++) tasks.push(t(round * 1000 + g, `g${g}`));
    for (let i = 0; i < 10; i++) tasks.push(t(5000 + i));
    await store.enqueue('q', tasks, 0);
    await store.close();
    const { db, statements } = counting(path);
    const turns = prepareTurns(db);
    let seq = 0;
    const claim = db.transaction((limit: number, limits?: ClaimLimits) =>
      turns('q', { limit, now: 1, leaseUntil: 10_000, token: `t${++seq}`, ...(limits && { limits }) }),
    );
    return {
      claim: (limit: number, limits?: ClaimLimits) => {
        const before = statements();
        const rows = claim.immediate(limit, limits) as { payload: string; grp: string | null }[];
        return { rows, statements: statements() - before };
      },
      close: () => db.close(),
    };
  }

  it('a claim over 150 groups takes them in a handful of statements', async () => {
    const b = await backlog();
    try {
      const { rows, statements } = b.claim(310);
      expect(rows).toHaveLength(310);
      expect(new Set(rows.map((r) => r.grp)).size).toBeGreaterThanOrEqual(150);
      expect(statements).toBeLessThanOrEqual(15);
    } finally {
      b.close();
    }
  });

  it('groupConcurrency 1 over 200 groups: one task of each, still a handful of statements', async () => {
    const b = await backlog();
    try {
      const { rows, statements } = b.claim(500, { groupConcurrency: 1 });
      const grouped = rows.filter((r) => r.grp !== null);
      expect(grouped).toHaveLength(200);
      expect(new Set(grouped.map((r) => r.grp)).size).toBe(200);
      // Each group's first task (enqueue order), and the tasks without a group (no group limit) all at once.
      expect(grouped.every((r) => JSON.parse(r.payload) < 1000)).toBe(true);
      expect(rows.length - grouped.length).toBe(10);
      expect(statements).toBeLessThanOrEqual(20);
      // Every group full: the next claim walks them all and takes nothing, in as few statements.
      const next = b.claim(500, { groupConcurrency: 1 });
      expect(next.rows).toEqual([]);
      expect(next.statements).toBeLessThanOrEqual(20);
    } finally {
      b.close();
    }
  });
});
