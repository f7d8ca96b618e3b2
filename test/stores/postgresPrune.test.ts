import { afterEach, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import type { Retention } from '../../src/stores/store.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';

const fresh = freshSchemas('prune');
const keep3: Retention = {
  succeeded: { count: 3, ageMs: Number.POSITIVE_INFINITY },
  dead: { count: 3, ageMs: Number.POSITIVE_INFINITY },
  cancelled: { count: 3, ageMs: Number.POSITIVE_INFINITY },
};

describe.skipIf(!pgAvailable)('postgres pruner: one process prunes a queue at a time', () => {
  const opened: ReturnType<typeof postgresStore>[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  const open = async (schema: string) => {
    const s = postgresStore({ connectionString: PG_URL, schema });
    await s.open();
    opened.push(s);
    return s;
  };

  /** `n` tasks of queue `q` run to success through `store`. */
  const succeed = async (store: ReturnType<typeof postgresStore>, q: string, n: number) => {
    await store.enqueue(
      q,
      Array.from({ length: n }, (_, i) => ({ payload: String(i), runAt: 0 })),
      0,
    );
    const claimed = await store.claim(q, { limit: n, now: 1, leaseUntil: 10_000, token: 'T' });
    await store.settle(
      q,
      claimed.map((c) => ({ kind: 'succeeded' as const, id: c.id, token: 'T' })),
      2,
    );
  };

  it('while another session holds the queue pruning lock, prune deletes nothing; after, it deletes', async () => {
    const schema = fresh();
    const store = await open(schema);
    await succeed(store, 'q', 10);
    await withClient(async (c) => {
      await c.query('BEGIN');
      // The lock another process's prune statement would hold while it runs.
      await c.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`keel.prune/"${schema}"/q`]);
      expect(await store.prune('q', keep3, 3, 100)).toBe(0);
      // Other queues have their own lock.
      await succeed(store, 'other', 5);
      expect(await store.prune('other', keep3, 3, 100)).toBe(2);
      await c.query('COMMIT');
    });
    expect(await store.prune('q', keep3, 3, 100)).toBe(7);
    expect((await store.list('q', { limit: 100 }, 4)).items).toHaveLength(3);
  });

  it('two stores pruning the same queue at once delete each excess task once, and leave the bound', async () => {
    const schema = fresh();
    const a = await open(schema);
    const b = await open(schema);
    await succeed(a, 'q', 400);
    let total = 0;
    const count = async () =>
      withClient(
        async (c) =>
          (await c.query(`SELECT count(*)::int AS n FROM "${schema}".task_history WHERE queue = 'q'`)).rows[0].n,
      );
    // Each keeps pruning until the bound is reached; a statement that found the lock taken deletes nothing.
    const loop = async (s: ReturnType<typeof postgresStore>) => {
      for (let i = 0; i < 500 && (await count()) > 3; i++) {
        const n = await s.prune('q', keep3, 3, 20);
        total += n;
      }
    };
    await Promise.all([loop(a), loop(b)]);
    expect(total).toBe(397);
    expect(await count()).toBe(3);
  });
});
