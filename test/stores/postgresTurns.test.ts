import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { postgresTasks, type Queryable } from '../../src/stores/postgres/tasks.js';
import type { ClaimLimits } from '../../src/stores/store.js';
import { freshSchemas, numericClient, PG_URL, pgAvailable } from '../fixtures/pg.js';

const fresh = freshSchemas('turns');

/**
 * The claim of a queue with groups or limits (`claim_turns`) runs a fixed
 * number of statements whatever the number of groups it visits: one cursor
 * fetched a row per group, then one update of the tasks and one of the groups.
 * The first version ran three to five statements per group, and a claim of
 * 500 tasks over 10,000 groups ran at a quarter of the plain claim's rate.
 * Statements are counted by auto_explain (nested statements, at NOTICE level,
 * on this session only), not timed.
 */
describe.skipIf(!pgAvailable)('postgres claim_turns: statements per claim', () => {
  const schema = fresh();
  const quoted = `"${schema}"`;
  const store = postgresStore({ connectionString: PG_URL, schema });
  let c: pg.Client;
  const notices: string[] = [];

  beforeAll(async () => {
    if (!pgAvailable) return;
    await store.open(); // migrates
    c = await numericClient();
    c.on('notice', (m) => notices.push(m.message ?? ''));
  });
  afterAll(async () => {
    await c?.end();
    await store.close();
  });

  const tasksOn = () => postgresTasks(() => c as unknown as Queryable, quoted, 'unused', `turns${Date.now()}`);

  /** Enqueues two tasks in each of `groups` groups of `queue`. */
  async function fill(queue: string, groups: number): Promise<void> {
    await store.enqueue(
      queue,
      Array.from({ length: groups * 2 }, (_, i) => ({ payload: String(i), runAt: 0, group: `g${i % groups}` })),
      0,
    );
  }

  /** Claims under auto_explain; returns the tasks and the statements the claim ran (itself included). */
  async function counted(queue: string, limit: number, limits: ClaimLimits) {
    await c.query(`LOAD 'auto_explain'`);
    await c.query(
      `SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
       SET auto_explain.log_level = 'notice'`,
    );
    notices.length = 0;
    try {
      const got = await tasksOn().claim(queue, { limit, now: 1, leaseUntil: 100_000, token: `t-${queue}`, limits });
      return { got, statements: notices.filter((m) => m.includes('Query Text:')).length };
    } finally {
      await c.query('SET auto_explain.log_min_duration = -1');
    }
  }

  for (const limits of [{ groupConcurrency: 5 }, { globalConcurrency: 10_000 }] as ClaimLimits[]) {
    it(`claims over 200 groups with as many statements as over 5 (${JSON.stringify(limits)})`, async () => {
      const tag = Object.keys(limits)[0]!;
      await fill(`few-${tag}`, 5);
      await fill(`many-${tag}`, 200);
      const few = await counted(`few-${tag}`, 1000, limits);
      const many = await counted(`many-${tag}`, 1000, limits);
      expect(few.got).toHaveLength(10);
      expect(many.got).toHaveLength(400);
      expect(new Set(many.got.map((t) => t.group)).size).toBe(200);
      expect(many.statements).toBe(few.statements);
      expect(many.statements).toBeLessThanOrEqual(12);
    });
  }

  it('a claim whose budget the first groups fill leaves the groups past them untouched', async () => {
    await fill('lazy', 100);
    const got = await tasksOn().claim('lazy', {
      limit: 3,
      now: 1,
      leaseUntil: 100_000,
      token: 'lazy',
      limits: { groupConcurrency: 5 },
    });
    expect(got.map((t) => t.group).sort()).toEqual(['g0', 'g0', 'g1']);
    // Moved to the back of the turns: the row of the tasks without a group (first, never served) and g0, g1.
    const served = await c.query(
      `SELECT grp FROM ${quoted}.groups WHERE queue = 'lazy' AND served > 0 ORDER BY served`,
    );
    expect(served.rows.map((r) => r.grp)).toEqual(['', 'g0', 'g1']);
    // g1 still has a task, but its turn comes after the groups not yet served.
    const claimLazy = (limit: number, now: number) =>
      tasksOn().claim('lazy', {
        limit,
        now,
        leaseUntil: 100_000,
        token: `lazy${now}`,
        limits: { groupConcurrency: 5 },
      });
    const next = await claimLazy(196, 2);
    expect(new Set(next.map((t) => t.group))).toEqual(new Set(Array.from({ length: 98 }, (_, i) => `g${i + 2}`)));
    expect((await claimLazy(10, 3)).map((t) => t.group)).toEqual(['g1']);
  });
});

/**
 * Three stores (three pools, as three processes) claim one queue under
 * groupConcurrency 1 at once, each settling what it claimed a moment later.
 * A claim whose cursor opened before another claim of the same group
 * committed must not take the group's next task: it reads tasks in its own,
 * older snapshot. Found by the three-process test (test/multiprocess/queueLimits.test.ts).
 */
describe.skipIf(!pgAvailable)('postgres claim_turns: concurrent claims keep groupConcurrency 1 and group order', () => {
  const schema = fresh();
  const stores = [0, 1, 2].map(() => postgresStore({ connectionString: PG_URL, schema }));
  beforeAll(async () => {
    if (!pgAvailable) return;
    for (const s of stores) await s.open();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
  });

  it('never two tasks of one group held at once, each group in enqueue order', { timeout: 120_000 }, async () => {
    const groups = 20;
    const total = 600;
    await stores[0]!.enqueue(
      'q',
      Array.from({ length: total }, (_, n) => ({ payload: String(n), runAt: 0, group: `u${n % groups}` })),
      0,
    );
    const held = new Map<string, number>();
    const order = new Map<string, number[]>();
    const clashes: string[] = [];
    let done = 0;
    let idle = 0;
    const worker = async (store: (typeof stores)[number], w: number) => {
      let seq = 0;
      while (done < total && idle < 2000) {
        const now = Date.now();
        const got = await store.claim('q', {
          limit: 4,
          now,
          leaseUntil: now + 60_000,
          token: `w${w}-${++seq}`,
          limits: { groupConcurrency: 1 },
        });
        if (got.length === 0) idle++;
        for (const t of got) {
          const g = t.group!;
          if (held.has(g)) clashes.push(`${g}: ${t.payload} while ${held.get(g)} is held`);
          held.set(g, Number(t.payload));
          order.set(g, [...(order.get(g) ?? []), Number(t.payload)]);
        }
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        for (const t of got) held.delete(t.group!);
        await store.settle(
          'q',
          got.map((t) => ({ kind: 'succeeded' as const, id: t.id, token: t.token })),
          Date.now(),
        );
        done += got.length;
      }
    };
    await Promise.all(stores.map((s, w) => worker(s, w)));
    expect(clashes).toEqual([]);
    expect(done).toBe(total);
    for (const [g, ns] of order) expect(ns, g).toEqual([...ns].sort((a, b) => a - b));
  });
});
