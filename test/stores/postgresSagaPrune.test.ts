import { afterEach, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { sagaPruneLockName } from '../../src/stores/postgres/sagas.js';
import type { SagaRecord } from '../../src/stores/sagaStore.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';

const fresh = freshSchemas('prune');

const done = (id: string, updatedAt: number): SagaRecord => ({
  saga: 'checkout',
  id,
  version: 'a',
  status: 'completed',
  state: '"completed"',
  context: '{"sagaId":"x","input":null,"results":{},"compensated":[]}',
  attempt: 1,
  notBefore: undefined,
  createdAt: updatedAt,
  updatedAt,
});

describe.skipIf(!pgAvailable)('saga pruning on Postgres: one process at a time (advisory lock)', () => {
  const stores: ReturnType<typeof postgresStore>[] = [];
  const open = async (schema: string) => {
    const s = postgresStore({ connectionString: PG_URL, schema });
    stores.push(s);
    await s.open();
    return s;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  const count = (schema: string) =>
    withClient(async (c) => Number((await c.query(`SELECT count(*) AS n FROM "${schema}".sagas`)).rows[0].n));

  it('a pruner finds the lock held by another session: busy, nothing deleted; once released it prunes', async () => {
    const schema = fresh();
    const store = await open(schema);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.saveSaga(done(`s${i}`, 100 + i))));
    const rule = { status: 'completed' as const, keep: 5, before: undefined, limit: 100 };
    await withClient(async (c) => {
      // Another process in the middle of its pass holds the lock (the key any tool can compute from the schema).
      await c.query('SELECT pg_advisory_lock(hashtext($1))', [sagaPruneLockName(`"${schema}"`)]);
      expect(await store.pruneSagas('checkout', rule)).toEqual({ deleted: 0, busy: true });
      expect(await count(schema)).toBe(20);
      await c.query('SELECT pg_advisory_unlock(hashtext($1))', [sagaPruneLockName(`"${schema}"`)]);
    });
    expect(await store.pruneSagas('checkout', rule)).toEqual({ deleted: 15, busy: false });
    expect(await count(schema)).toBe(5);
    // Another schema has its own lock: pruning there never waits for this one.
    expect(sagaPruneLockName('"a"')).not.toBe(sagaPruneLockName('"b"'));
  });

  it('two processes pruning at once: each batch runs alone, and together they delete exactly what the rule says', async () => {
    const schema = fresh();
    const a = await open(schema);
    const b = await open(schema);
    await Promise.all(Array.from({ length: 2_000 }, (_, i) => a.saveSaga(done(`s${i}`, 1_000 + i))));
    const rule = { status: 'completed' as const, keep: 100, before: undefined, limit: 50 };
    let deleted = 0;
    const loop = async (store: typeof a) => {
      for (let i = 0; i < 400; i++) {
        const r = await store.pruneSagas('checkout', rule);
        deleted += r.deleted;
        if (!r.busy && r.deleted === 0) return;
      }
    };
    await Promise.all([loop(a), loop(b)]);
    expect(deleted).toBe(1_900);
    expect(await count(schema)).toBe(100);
    const kept = await a.listSagas('checkout', { limit: 1_000 });
    expect(kept.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => `s${1_999 - i}`));
  });
});
