import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError, postgresStore, type Runtime, sqliteStore } from '../../src/index.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

/** Issue #12 point 12: a driver failure reaches callers as `STORE_UNAVAILABLE` with the driver error as `cause`. */
function expectStoreUnavailable(error: unknown, cause: RegExp): void {
  expect(error).toBeInstanceOf(KeelError);
  expect((error as KeelError).code).toBe('STORE_UNAVAILABLE');
  expect((error as KeelError).cause).toBeInstanceOf(Error);
  expect(String(((error as KeelError).cause as Error).message)).toMatch(cause);
}

let rt: Runtime | undefined;
afterEach(async () => {
  await rt?.stop().catch(() => {});
  rt = undefined;
});

describe('sqlite: a busy database', () => {
  it('enqueue, stats and a saga save reject with STORE_UNAVAILABLE while another connection holds the write lock', async () => {
    const path = `${tempPath('busy')}.db`;
    rt = createRuntime({ store: sqliteStore({ path, busyTimeoutMs: 0 }) });
    const q = rt.queue('q', { handler: async () => {}, paused: true });
    await rt.start();
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      expectStoreUnavailable(await q.enqueue({ a: 1 }).catch((e) => e), /locked|busy/i);
      expectStoreUnavailable(
        await rt.store
          .saveSaga({
            saga: 's',
            id: '1',
            version: 'v',
            status: 'running',
            state: '"a"',
            context: '{}',
            attempt: 1,
            notBefore: undefined,
            createdAt: 0,
            updatedAt: 0,
          })
          .catch((e) => e),
        /locked|busy/i,
      );
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    // The store answers again once the lock is gone.
    await expect(q.enqueue({ a: 2 })).resolves.toMatchObject({ deduplicated: false });
    await rt.stop();
    rt = undefined;
    removeDb(path);
  });
});

describe.skipIf(!pgAvailable)('postgres: a failing statement and a dropped connection', () => {
  const schema = freshSchemas('drv');

  it('a statement the database refuses rejects with STORE_UNAVAILABLE', async () => {
    const s = schema();
    rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema: s }) });
    const q = rt.queue('q', { handler: async () => {}, paused: true });
    await rt.start();
    await withClient((c) => c.query(`DROP TABLE "${s}".tasks CASCADE`));
    expectStoreUnavailable(await q.enqueue({ a: 1 }).catch((e) => e), /does not exist/);
    expectStoreUnavailable(await q.stats().catch((e) => e), /does not exist/);
  });

  it('a connection killed by the server rejects with STORE_UNAVAILABLE', async () => {
    const s = schema();
    rt = createRuntime({
      store: postgresStore({ connectionString: PG_URL, schema: s, applicationName: `keel-drv-${process.pid}` }),
      onError: () => {},
    });
    const q = rt.queue('q', { handler: async () => {}, paused: true });
    await rt.start();
    await q.stats();
    // Kill the store's connection while its query is in flight: block the query on a lock, then terminate it.
    const error = await withClient(async (locker) => {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${s}".tasks IN ACCESS EXCLUSIVE MODE`);
      const pending = q.stats().catch((e) => e);
      for (let killed = 0; killed === 0; ) {
        await new Promise((r) => setTimeout(r, 20));
        const res = await locker.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [`keel-drv-${process.pid}`],
        );
        killed = res.rowCount ?? 0;
      }
      await locker.query('ROLLBACK');
      return pending;
    });
    expectStoreUnavailable(error, /terminat|connection/i);
  });
});
