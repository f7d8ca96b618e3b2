/**
 * The `DurableBus` store capability (issue #16.5), one contract for memory,
 * SQLite and Postgres: subscriptions by name, recording as one task per
 * matching subscription (wildcards matched by the store), replay of the log
 * since a time for a new subscription only, pruning, deletion.
 */
import { describe, expect, it } from 'vitest';
import { memoryStore, postgresStore, sqliteStore } from '../../src/index.js';
import {
  type DurableBus,
  type DurableEvent,
  isDurableBus,
  isTransactionalDurableBus,
  type Store,
  topicMatches,
} from '../../src/stores/store.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { openedStore, type StoreFactory } from './contract.js';

const ev = (topic: string, time: number, n: number): DurableEvent => ({
  topic,
  time,
  envelope: JSON.stringify({ id: `e${n}`, type: topic, time, data: { n } }),
});

/** The `n` of every task waiting on a subscription's queue, claim order. */
async function queued(store: Store, name: string, now = 1_000_000): Promise<number[]> {
  const claimed = await store.claim(`bus:${name}`, { limit: 100, now, leaseUntil: now + 1000, token: 'x' });
  return claimed.map((t) => (JSON.parse(t.payload) as { data: { n: number } }).data.n);
}

function durableBusContract(name: string, factory: StoreFactory): void {
  describe(`durable bus contract: ${name}`, () => {
    const opened = openedStore(factory);
    const bus = () => {
      const store = opened();
      expect(isDurableBus(store)).toBe(true);
      return store as Store & DurableBus;
    };

    it('saves, moves, lists and deletes subscriptions by name', async () => {
      const s = bus();
      expect(await s.saveDurable('a', 'order.*', 10)).toBe(true);
      expect(await s.saveDurable('b', 'user.>', 11)).toBe(true);
      expect(await s.saveDurable('a', 'order.>', 12)).toBe(false);
      expect(await s.listDurables()).toEqual([
        { name: 'a', pattern: 'order.>', createdAt: 10 },
        { name: 'b', pattern: 'user.>', createdAt: 11 },
      ]);
      expect(await s.deleteDurable('a')).toBe(true);
      expect(await s.deleteDurable('a')).toBe(false);
      expect((await s.listDurables()).map((d) => d.name)).toEqual(['b']);
    });

    it('records one task per matching subscription, wildcards matched by the store', async () => {
      const s = bus();
      await s.saveDurable('one', 'order.*', 0);
      await s.saveDurable('rest', 'order.>', 0);
      await s.saveDurable('exact', 'order.placed', 0);
      await s.saveDurable('none', 'user.*', 0);
      const n = await s.recordEvents(
        [ev('order.placed', 5, 1), ev('order.placed.eu', 5, 2), ev('order', 5, 3), ev('audit.order.placed', 5, 4)],
        5,
      );
      expect(n).toBe(4);
      expect(await queued(s, 'one')).toEqual([1]);
      expect(await queued(s, 'rest')).toEqual([1, 2]);
      expect(await queued(s, 'exact')).toEqual([1]);
      expect(await queued(s, 'none')).toEqual([]);
      expect(await s.recordEvents([], 6)).toBe(0);
    });

    it('replays the log since a time to a new subscription only, and prunes it', async () => {
      const s = bus();
      await s.saveDurable('logger', '>', 0);
      await s.recordEvents([ev('a.x', 100, 1), ev('b.x', 200, 2), ev('a.y', 300, 3)], 300);
      expect(await s.saveDurable('late', 'a.*', 400, 150)).toBe(true);
      expect(await queued(s, 'late')).toEqual([3]);
      expect(await s.saveDurable('early', 'a.*', 400, 0)).toBe(true);
      expect(await queued(s, 'early')).toEqual([1, 3]);
      // An existing subscription is not replayed to again.
      expect(await s.saveDurable('early', 'a.*', 500, 0)).toBe(false);
      expect(await queued(s, 'early', 2_000_000)).toEqual([]);
      expect(await s.pruneEvents(250)).toBe(2);
      expect(await s.saveDurable('after-prune', '>', 600, 0)).toBe(true);
      expect(await queued(s, 'after-prune')).toEqual([3]);
    });

    it('topicMatches: * is one token, > one or more trailing tokens', () => {
      expect(topicMatches('a.*', 'a.b')).toBe(true);
      expect(topicMatches('a.*', 'a.b.c')).toBe(false);
      expect(topicMatches('a.>', 'a')).toBe(false);
      expect(topicMatches('a.>', 'a.b.c')).toBe(true);
      expect(topicMatches('>', 'a')).toBe(true);
      expect(topicMatches('a.b', 'a.b')).toBe(true);
      expect(topicMatches('a.b', 'a')).toBe(false);
      expect(topicMatches('*.b', 'x.b')).toBe(true);
    });
  });
}

durableBusContract('memory', () => ({ store: memoryStore() }));
durableBusContract('sqlite', () => {
  const path = `${tempPath('durable')}.db`;
  return { store: sqliteStore({ path }), cleanup: () => removeDb(path) };
});
describe.skipIf(!pgAvailable)('postgres', () => {
  const fresh = freshSchemas('dc');
  durableBusContract('postgres', () => ({ store: postgresStore({ connectionString: PG_URL, schema: fresh() }) }));
  it('only Postgres records inside a caller transaction', () => {
    expect(isTransactionalDurableBus(postgresStore({ connectionString: PG_URL, schema: fresh() }))).toBe(true);
    expect(isTransactionalDurableBus(memoryStore())).toBe(false);
    expect(isTransactionalDurableBus(sqliteStore({ path: ':memory:' }))).toBe(false);
  });
});
