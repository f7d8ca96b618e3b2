import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { renewValues, settleValues, taskStatements } from '../../src/stores/postgres/taskSql.js';
import type { ClaimedTask, Outcome } from '../../src/stores/store.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';

const fresh = freshSchemas('plans');

interface PlanNode {
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Join Filter'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

/**
 * Rows every plan node produced or filtered out, over all its loops: a
 * statement whose work grows with the square of its batch (a nested loop
 * rescanning a CTE per row) shows it here, whatever the clock says.
 */
function rowsTouched(node: PlanNode): number {
  // EXPLAIN prints per-loop averages.
  const own =
    (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Join Filter'] ?? 0)) *
    node['Actual Loops'];
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsTouched(child), 0);
}

/** Runs `text` under EXPLAIN ANALYZE in a transaction that is rolled back; returns the top plan node. */
async function explain(text: string, values: unknown[], generic: boolean): Promise<PlanNode> {
  return withClient(async (client) => {
    await client.query('BEGIN');
    try {
      // Stored statements go generic after five runs; both kinds of plan must stay linear.
      await client.query(`SET LOCAL plan_cache_mode = ${generic ? 'force_generic_plan' : 'force_custom_plan'}`);
      const res = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, values);
      return (res.rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan;
    } finally {
      await client.query('ROLLBACK');
    }
  });
}

/**
 * The settle and renew statements take whole batches. A batch grows when the
 * database falls behind (outcomes pile up while one settle runs), so a
 * statement whose work is quadratic in its batch feeds on itself: on a 200k
 * backlog a settle of 6,000 outcomes took 15 s, the next batch was larger
 * still, and throughput collapsed. Fresh tables have no statistics (nothing
 * has run ANALYZE), which is when the planner picked such plans.
 */
describe.skipIf(!pgAvailable)('postgres task statements stay linear in their batch, without statistics', () => {
  const schema = fresh();
  const quoted = `"${schema}"`;
  const store = postgresStore({ connectionString: PG_URL, schema });
  const sql = taskStatements(quoted, 'unused');
  const N = 2000;
  let claimed: ClaimedTask[] = [];

  beforeAll(async () => {
    if (!pgAvailable) return;
    await store.open();
    await store.enqueue(
      'q',
      Array.from({ length: N }, (_, i) => ({ payload: `{"i":${i}}`, runAt: 0 })),
      1,
    );
    claimed = await store.claim('q', { limit: N, now: 2, leaseUntil: 100_000, token: 'tok' });
  });
  afterAll(async () => {
    await store.close();
  });

  for (const generic of [false, true]) {
    const kind = generic ? 'generic' : 'custom';

    it(`settle of ${N} successes (${kind} plan)`, async () => {
      expect(claimed).toHaveLength(N);
      const outcomes: Outcome[] = claimed.map((t) => ({ kind: 'succeeded', id: t.id, token: t.token }));
      const plan = await explain(sql.settle, settleValues('q', outcomes, 3, 0), generic);
      expect(plan['Actual Rows']).toBe(N);
      expect(rowsTouched(plan)).toBeLessThan(40 * N);
    });

    it(`settle of ${N} mixed outcomes (${kind} plan)`, async () => {
      const kinds = ['succeeded', 'retrying', 'released', 'dead'] as const;
      const outcomes: Outcome[] = claimed.map((t, i) => {
        const k = kinds[i % 4]!;
        if (k === 'succeeded') return { kind: k, id: t.id, token: t.token };
        if (k === 'dead') return { kind: k, id: t.id, token: t.token, error: 'e' };
        if (k === 'released') return { kind: k, id: t.id, token: t.token, runAt: 5 };
        return { kind: k, id: t.id, token: t.token, runAt: 5, error: 'e' };
      });
      const plan = await explain(sql.settle, settleValues('q', outcomes, 3, 0), generic);
      expect(plan['Actual Rows']).toBe(N);
      expect(rowsTouched(plan)).toBeLessThan(40 * N);
    });

    it(`renew of ${N} leases (${kind} plan)`, async () => {
      const leases = claimed.map((t) => ({ id: t.id, token: t.token }));
      const plan = await explain(sql.renew, renewValues('q', leases, 200_000, 3), generic);
      expect(plan['Actual Rows']).toBe(N);
      expect(rowsTouched(plan)).toBeLessThan(40 * N);
    });
  }
});
