import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { postgresTasks, type Queryable } from '../../src/stores/postgres/tasks.js';
import type { Outcome } from '../../src/stores/store.js';
import { numericClient as client, freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';

const fresh = freshSchemas('claim');

const succeeded = (ts: { id: string; token: string }[]): Outcome[] =>
  ts.map((t) => ({ kind: 'succeeded', id: t.id, token: t.token }));

describe.skipIf(!pgAvailable)('postgres claim: starts after the last key it claimed', () => {
  const schema = fresh();
  const quoted = `"${schema}"`;
  const store = postgresStore({ connectionString: PG_URL, schema });
  let c: pg.Client;

  beforeAll(async () => {
    if (!pgAvailable) return;
    await store.open(); // migrates
    c = await client();
  });
  afterAll(async () => {
    await c?.end();
    await store.close();
  });

  /** The task half on our own client, so one transaction can read its own index page counts. */
  const tasksOn = () => postgresTasks(() => c as unknown as Queryable, quoted, 'unused', `claim${Date.now()}`);

  /** Index pages of tasks_ready that one claim of `limit` reads (in a transaction that is rolled back). */
  async function readyPagesOfClaim(tasks: ReturnType<typeof tasksOn>, queue: string, now: number): Promise<number> {
    await c.query('BEGIN');
    try {
      const blocks = async () =>
        Number(
          (await c.query(`SELECT pg_stat_get_xact_blocks_fetched('${quoted}.tasks_ready'::regclass) AS n`)).rows[0].n,
        );
      const before = await blocks();
      const got = await tasks.claim(queue, { limit: 40, now, leaseUntil: now + 60_000, token: 'probe' });
      expect(got).toHaveLength(40);
      return (await blocks()) - before;
    } finally {
      await c.query('ROLLBACK');
    }
  }

  it('reads as few index pages near the end of a drained backlog as at its start', { timeout: 60_000 }, async () => {
    const tasks = tasksOn();
    const N = 20_000;
    for (let i = 0; i < N; i += 5000) {
      await tasks.enqueue(
        'deep',
        Array.from({ length: 5000 }, () => ({ payload: '{}', runAt: 1 })),
        1,
      );
    }
    const atStart = await readyPagesOfClaim(tasks, 'deep', 10);
    // Claimed and settled tasks leave index entries behind until VACUUM (autovacuum is off here).
    let left = N;
    while (left > 100) {
      const limit = Math.min(1000, left - 100);
      const got = await tasks.claim('deep', { limit, now: 10, leaseUntil: 60_000, token: `t${left}` });
      await tasks.settle('deep', succeeded(got), 10);
      left -= got.length;
    }
    const nearEnd = await readyPagesOfClaim(tasks, 'deep', 10);
    // From the start of the index, the claim would walk ~19,900 dead entries (about 100 pages).
    expect(atStart).toBeLessThan(10);
    expect(nearEnd).toBeLessThanOrEqual(atStart + 3);
  });

  it('a task that lands behind the last claimed key is claimed once the queue ahead runs short', async () => {
    const tasks = tasksOn();
    await tasks.enqueue('behind', [{ payload: '"a"', runAt: 10 }], 10);
    const [a] = await tasks.claim('behind', { limit: 1, now: 20, leaseUntil: 1000, token: 'x' });
    expect(a?.payload).toBe('"a"');
    // Due earlier than the task just claimed (e.g. a producer whose clock lags).
    await tasks.enqueue('behind', [{ payload: '"b"', runAt: 5 }], 20);
    const got = await tasks.claim('behind', { limit: 5, now: 21, leaseUntil: 1000, token: 'y' });
    expect(got.map((t) => t.payload)).toEqual(['"b"']);
  });

  it('with work ahead, a task behind the last claimed key waits at most a second past its turn', async () => {
    const tasks = tasksOn();
    await tasks.enqueue(
      'fair',
      Array.from({ length: 100 }, (_, i) => ({ payload: String(i), runAt: 10 })),
      10,
    );
    const first = await tasks.claim('fair', { limit: 10, now: 20, leaseUntil: 10_000, token: 'a' });
    expect(first.map((t) => t.payload)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    await tasks.enqueue('fair', [{ payload: '"late"', runAt: 5 }], 20);
    // Within the second, claims continue from the last key: the late task is not seen yet.
    const next = await tasks.claim('fair', { limit: 10, now: 500, leaseUntil: 10_000, token: 'b' });
    expect(next.map((t) => t.payload)).toEqual(['10', '11', '12', '13', '14', '15', '16', '17', '18', '19']);
    // A second after the last scan from the start, the claim scans from the start again and finds it first.
    const later = await tasks.claim('fair', { limit: 3, now: 20 + 1000, leaseUntil: 10_000, token: 'c' });
    expect(later.map((t) => t.payload)).toEqual(['"late"', '20', '21']);
    // ... and continues from there.
    const after = await tasks.claim('fair', { limit: 2, now: 1021, leaseUntil: 10_000, token: 'd' });
    expect(after.map((t) => t.payload)).toEqual(['22', '23']);
  });

  it('a lease its holder had locked through two reaps is reaped by the next full reap, within ten seconds', async () => {
    const tasks = tasksOn();
    await tasks.enqueue('reap', [{ payload: '"x"', runAt: 0 }], 0);
    const [t] = await tasks.claim('reap', { limit: 1, now: 1, leaseUntil: 100, token: 'x' });
    const holder = await client();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${quoted}.tasks WHERE id = $1 FOR UPDATE`, [Number(t!.id)]);
      expect(await tasks.expireLeases('reap', 200, 5)).toEqual([]);
      expect(await tasks.expireLeases('reap', 3_000, 5)).toEqual([]);
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    // Reaps look back only a second past the last one...
    expect(await tasks.expireLeases('reap', 5_000, 5)).toEqual([]);
    // ... and at every lease ten seconds after the last full reap.
    expect(await tasks.expireLeases('reap', 10_200, 5)).toEqual([{ id: t!.id, state: 'pending' }]);
  });

  it('a reap after many settled leases ran out reads few index pages', { timeout: 60_000 }, async () => {
    const tasks = tasksOn();
    for (let i = 0; i < 4; i++) {
      await tasks.enqueue(
        'leases',
        Array.from({ length: 5000 }, () => ({ payload: '{}', runAt: 0 })),
        0,
      );
    }
    let now = 1;
    for (;;) {
      const got = await tasks.claim('leases', { limit: 1000, now, leaseUntil: now + 100, token: `t${now}` });
      if (got.length === 0) break;
      await tasks.settle('leases', succeeded(got), now);
      now += 2000;
    }
    await tasks.expireLeases('leases', now, 5);
    // Every settled task's lease has run out by now; their tasks_leases entries are still there.
    await c.query('BEGIN');
    try {
      const blocks = async () =>
        Number(
          (await c.query(`SELECT pg_stat_get_xact_blocks_fetched('${quoted}.tasks_leases'::regclass) AS n`)).rows[0].n,
        );
      const before = await blocks();
      expect(await tasks.expireLeases('leases', now + 200, 5)).toEqual([]);
      expect((await blocks()) - before).toBeLessThan(10);
    } finally {
      await c.query('ROLLBACK');
    }
  });
});
