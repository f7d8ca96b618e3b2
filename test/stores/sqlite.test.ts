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
