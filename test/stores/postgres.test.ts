import { describe, expect, it } from 'vitest';
import { createRuntime, KeelError, postgresStore } from '../../src/index.js';
import { postgresMigrations } from '../../src/stores/postgres/migrations.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';
import { storeContract } from './contract.js';
import { historyContract } from './historyContract.js';
import { sagaStoreContract } from './sagaContract.js';
import { scheduleStoreContract } from './scheduleContract.js';

const fresh = freshSchemas('c');

describe.skipIf(!pgAvailable)('postgres', () => {
  const schemaStore = () => ({ store: postgresStore({ connectionString: PG_URL, schema: fresh() }) });
  storeContract('postgres', schemaStore);
  historyContract('postgres', schemaStore);
  sagaStoreContract('postgres', schemaStore);
  scheduleStoreContract('postgres', schemaStore);

  describe('postgresStore specifics', () => {
    it('keeps tasks across close and reopen, at the latest schema version, in its own schema', async () => {
      const schema = fresh('s');
      const a = postgresStore({ connectionString: PG_URL, schema });
      await a.open();
      const [r] = await a.enqueue('q', [{ payload: '{"x":1}', runAt: 0, key: 'k' }], 0);
      await a.close();
      const b = postgresStore({ connectionString: PG_URL, schema });
      await b.open();
      expect(await b.get('q', r!.id, 0)).toMatchObject({ state: 'pending', key: 'k', payload: '{"x":1}' });
      await b.close();
      const versions = await withClient(
        async (c) => (await c.query(`SELECT version FROM "${schema}".migrations ORDER BY version`)).rows,
      );
      expect(versions.map((v) => v.version)).toEqual(postgresMigrations.map((_, i) => i + 1));
      // Another schema on the same database sees none of it.
      const other = postgresStore({ connectionString: PG_URL, schema: fresh('o') });
      await other.open();
      expect(await other.get('q', r!.id, 0)).toBeUndefined();
      await other.close();
    });

    it('migrates once when several processes open the same new schema at the same moment', async () => {
      const schema = fresh('m');
      const stores = Array.from({ length: 6 }, () => postgresStore({ connectionString: PG_URL, schema, poolSize: 2 }));
      await Promise.all(stores.map((s) => s.open()));
      const results = await Promise.all(stores.map((s, i) => s.enqueue('q', [{ payload: String(i), runAt: 0 }], 0)));
      expect(new Set(results.map((r) => r[0]!.id)).size).toBe(6);
      await Promise.all(stores.map((s) => s.close()));
      const n = await withClient(
        async (c) => (await c.query(`SELECT count(*)::int AS n FROM "${schema}".migrations`)).rows[0].n,
      );
      expect(n).toBe(postgresMigrations.length);
    });

    it('refuses a schema written by a newer keel with STORE_UNAVAILABLE', async () => {
      const schema = fresh('n');
      const s = postgresStore({ connectionString: PG_URL, schema });
      await s.open();
      await s.close();
      await withClient((c) =>
        c.query(`INSERT INTO "${schema}".migrations (version) VALUES (${postgresMigrations.length + 1})`),
      );
      const err = await postgresStore({ connectionString: PG_URL, schema })
        .open()
        .catch((e) => e);
      expect(err).toBeInstanceOf(KeelError);
      expect(err.code).toBe('STORE_UNAVAILABLE');
      expect(err.message).toContain('newer');
    });

    it('an unreachable server fails rt.start() with STORE_UNAVAILABLE, without the password in the message', async () => {
      const store = postgresStore({ connectionString: 'postgres://u:secret@127.0.0.1:1/none', connectTimeoutMs: 2000 });
      const rt = createRuntime({ store });
      const err = await rt.start().catch((e) => e);
      expect(err).toBeInstanceOf(KeelError);
      expect(err.code).toBe('STORE_UNAVAILABLE');
      expect(err.message).toContain('127.0.0.1:1/none');
      expect(err.message).not.toContain('secret');
      await rt.stop();
      const closed = await postgresStore({ connectionString: PG_URL })
        .stats('q', 0)
        .catch((e) => e);
      expect(closed.code).toBe('STORE_UNAVAILABLE');
    });

    it('sagas: one owner at a time; a quiet owner loses the saga after its lease and its late writes are refused', async () => {
      const schema = fresh('o');
      const a = postgresStore({ connectionString: PG_URL, schema, sagaLeaseMs: 100 });
      const b = postgresStore({ connectionString: PG_URL, schema, sagaLeaseMs: 100 });
      await Promise.all([a.open(), b.open()]);
      const rec = {
        saga: 's',
        id: '1',
        version: 'v',
        status: 'running' as const,
        state: '{"running":"x"}',
        context: '{}',
        attempt: 1,
        notBefore: undefined,
        createdAt: 1000,
        updatedAt: 1000,
      };
      await a.saveSaga(rec);
      expect(await b.adoptSagas!('s', 1050)).toEqual([]);
      expect(await a.renewSagas!('s', ['1'], 1090)).toEqual([]); // now held until 1190
      expect(await b.adoptSagas!('s', 1150)).toEqual([]);
      expect((await b.adoptSagas!('s', 1200)).map((r) => r.id)).toEqual(['1']);
      expect(await a.renewSagas!('s', ['1'], 1210)).toEqual(['1']);
      const late = await a.saveSaga({ ...rec, attempt: 2, updatedAt: 1220 }).catch((e) => e);
      expect(late).toBeInstanceOf(KeelError);
      expect(late.code).toBe('SAGA_NOT_OWNED');
      await b.saveSaga({ ...rec, attempt: 3, updatedAt: 1230 });
      expect((await a.loadSaga('s', '1'))?.attempt).toBe(3);
      // Released on a graceful stop: anyone may adopt at once.
      await b.releaseSagas!('s', ['1']);
      expect((await a.adoptSagas!('s', 1240)).map((r) => r.id)).toEqual(['1']);
      await Promise.all([a.close(), b.close()]);
    });

    it('watch on a closed store opens no connection (it would keep the process alive)', async () => {
      const app = `keel_watch_${process.pid}_${Date.now()}`;
      const s = postgresStore({ connectionString: PG_URL, schema: fresh('w'), applicationName: app });
      const count = () =>
        withClient(
          async (c) =>
            (await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app]))
              .rows[0].n as number,
        );
      await s.open();
      const off = s.watch!('q', () => {});
      await new Promise((r) => setTimeout(r, 200));
      expect(await count()).toBeGreaterThanOrEqual(1);
      off();
      await s.close();
      s.watch!('q', () => {})();
      await new Promise((r) => setTimeout(r, 200));
      expect(await count()).toBe(0);
    });

    it('validates its options with INVALID_OPTIONS naming the option', () => {
      const bad: [unknown, RegExp][] = [
        [undefined, /options/],
        [{}, /connectionString/],
        [{ connectionString: '' }, /connectionString/],
        [{ connectionString: PG_URL, schema: 'a-b' }, /schema/],
        [{ connectionString: PG_URL, schema: '' }, /schema/],
        [{ connectionString: PG_URL, poolSize: 0 }, /poolSize/],
        [{ connectionString: PG_URL, connectTimeoutMs: 1.5 }, /connectTimeoutMs/],
        [{ connectionString: PG_URL, sagaLeaseMs: -1 }, /sagaLeaseMs/],
        [{ connectionString: PG_URL, bus: 'yes' }, /bus/],
        [{ connectionString: PG_URL, bus: [''] }, /bus/],
        [{ connectionString: PG_URL, onError: 1 }, /onError/],
        [{ connectionString: PG_URL, pool: 3 }, /pool/],
      ];
      for (const [options, message] of bad) {
        let err: unknown;
        try {
          postgresStore(options as never);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(KeelError);
        expect((err as KeelError).code).toBe('INVALID_OPTIONS');
        expect((err as KeelError).message).toMatch(message);
      }
    });
  });
});
