import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { KeelError, sqliteStore } from '../../src/index.js';
import { sqliteMigrations } from '../../src/stores/sqlite/migrations.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { storeContract } from './contract.js';
import { historyContract } from './historyContract.js';
import { sagaStoreContract } from './sagaContract.js';
import { scheduleStoreContract } from './scheduleContract.js';

const tempDb = () => `${tempPath('store')}.db`;

const fileStore = () => {
  const path = tempDb();
  return { store: sqliteStore({ path }), cleanup: () => removeDb(path) };
};

storeContract('sqlite', fileStore);
historyContract('sqlite', fileStore);
sagaStoreContract('sqlite', fileStore);
scheduleStoreContract('sqlite', fileStore);

describe('sqliteStore specifics', () => {
  const paths: string[] = [];
  afterEach(() => {
    for (const p of paths.splice(0)) removeDb(p);
  });
  const fresh = () => {
    const p = tempDb();
    paths.push(p);
    return p;
  };

  it('keeps tasks across close and reopen, in WAL mode at the latest schema version', async () => {
    const path = fresh();
    const a = sqliteStore({ path });
    await a.open();
    const [r] = await a.enqueue('q', [{ payload: '{"x":1}', runAt: 0, key: 'k' }], 0);
    await a.close();
    const b = sqliteStore({ path });
    await b.open();
    expect(await b.get('q', r!.id, 0)).toMatchObject({ state: 'pending', key: 'k', payload: '{"x":1}' });
    await b.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(sqliteMigrations.length);
    db.close();
  });

  it('upgrades a file of the first release (three migrations): its sagas stay, a finished one is pruned by its end time', async () => {
    const path = fresh();
    const db = new Database(path);
    for (const [v, sql] of sqliteMigrations.slice(0, 3).entries()) {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    }
    const row = db.prepare(
      `INSERT INTO keel_sagas (saga, id, version, status, state, context, attempt, not_before, created_at, updated_at)
       VALUES ('checkout', ?, 'v1', ?, '"x"', '{}', 1, NULL, ?, ?)`,
    );
    row.run('done', 'completed', 100, 200);
    row.run('busy', 'running', 150, 160);
    db.close();
    const store = sqliteStore({ path });
    await store.open();
    expect(await store.loadSaga('checkout', 'done')).toMatchObject({ status: 'completed', updatedAt: 200 });
    expect(await store.loadSaga('checkout', 'busy')).toMatchObject({ status: 'running', createdAt: 150 });
    // Finished at 200: not before 200, pruned before 201; the running one never.
    expect(
      await store.pruneSagas('checkout', { status: 'completed', keep: undefined, before: 200, limit: 10 }),
    ).toMatchObject({ deleted: 0 });
    expect(
      await store.pruneSagas('checkout', { status: 'completed', keep: undefined, before: 201, limit: 10 }),
    ).toMatchObject({ deleted: 1 });
    expect(await store.loadSaga('checkout', 'done')).toBeUndefined();
    expect(await store.loadSaga('checkout', 'busy')).toMatchObject({ status: 'running' });
    await store.close();
  });

  it('a running checkpoint never lands on a saga that has ended (a saga does not go back to running)', async () => {
    const store = sqliteStore({ path: fresh() });
    await store.open();
    const base = {
      saga: 'checkout',
      id: 's1',
      version: 'v1',
      state: '"a"',
      context: '{}',
      attempt: 1,
      notBefore: undefined,
      createdAt: 1,
    };
    await store.saveSaga({ ...base, status: 'running', updatedAt: 2 });
    await store.saveSaga({ ...base, status: 'completed', state: '"completed"', updatedAt: 3 });
    await store.saveSaga({ ...base, status: 'running', state: '"late"', updatedAt: 4 });
    expect(await store.loadSaga('checkout', 's1')).toMatchObject({
      status: 'completed',
      state: '"completed"',
      updatedAt: 3,
    });
    await store.close();
  });

  it('refuses a file written by a newer schema with STORE_UNAVAILABLE', async () => {
    const path = fresh();
    const db = new Database(path);
    db.pragma(`user_version = ${sqliteMigrations.length + 1}`);
    db.close();
    const err = await sqliteStore({ path })
      .open()
      .catch((e) => e);
    expect(err).toBeInstanceOf(KeelError);
    expect(err.code).toBe('STORE_UNAVAILABLE');
    expect(err.message).toContain('newer');
  });

  it('fails to open an unusable path with STORE_UNAVAILABLE and calls before open fail clearly', async () => {
    const err = await sqliteStore({ path: join(tmpdir(), 'no-such-dir-keel', 'x', 'db.sqlite') })
      .open()
      .catch((e) => e);
    expect(err.code).toBe('STORE_UNAVAILABLE');
    const closed = await sqliteStore({ path: fresh() })
      .stats('q', 0)
      .catch((e) => e);
    expect(closed.code).toBe('STORE_UNAVAILABLE');
  });

  it('validates its options', () => {
    expect(() => sqliteStore({ path: '' })).toThrow(/path/);
    expect(() => sqliteStore({ path: 'x', synchronous: 'OFF' as never })).toThrow(/synchronous/);
  });
});
