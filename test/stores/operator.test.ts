import { describe, expect, it } from 'vitest';
import { createRuntime, KeelError, memoryStore, postgresStore, type Runtime, sqliteStore } from '../../src/index.js';
import { canDeleteDead, hasQueuePauses, type Store } from '../../src/stores/store.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { until } from '../fixtures/wait.js';
import { openedStore, type StoreFactory } from './contract.js';

const fresh = freshSchemas('op');
const Q = 'q';

/** Two dead tasks, one pending task and one dead task of another queue; returns their ids. */
async function seed(store: Store) {
  const [a, b, c] = await store.enqueue(
    Q,
    ['a', 'b', 'c'].map((p) => ({ payload: JSON.stringify(p), runAt: 0 })),
    0,
  );
  const [other] = await store.enqueue('other', [{ payload: '"o"', runAt: 0 }], 0);
  const claimed = await store.claim(Q, { limit: 2, now: 1, leaseUntil: 1000, token: 't' });
  await store.settle(
    Q,
    claimed.map((t) => ({ kind: 'dead' as const, id: t.id, token: t.token, error: 'gone' })),
    2,
  );
  const [o] = await store.claim('other', { limit: 1, now: 1, leaseUntil: 1000, token: 'u' });
  await store.settle('other', [{ kind: 'dead', id: o!.id, token: o!.token, error: 'gone' }], 2);
  return { a: a!.id, b: b!.id, live: c!.id, other: other!.id };
}

/** The operator actions' part of the store contract (issue #19), for every store. */
function operatorContract(name: string, factory: StoreFactory, pauses: boolean) {
  describe(`operator contract: ${name}`, () => {
    const opened = openedStore(factory);

    it('deletes the listed dead tasks of the queue only, and says which', async () => {
      const store = opened();
      expect(canDeleteDead(store)).toBe(true);
      if (!canDeleteDead(store)) return;
      const { a, b, live, other } = await seed(store);
      expect(await store.deleteDead(Q, [])).toEqual([]);
      // Unknown, malformed, live and other-queue ids are left alone.
      expect(await store.deleteDead(Q, [a, live, other, 'nope', '999999'])).toEqual([a]);
      expect((await store.dead(Q)).map((t) => t.id)).toEqual([b]);
      expect(await store.get(Q, live, 3)).toMatchObject({ state: 'pending' });
      expect((await store.dead('other')).map((t) => t.id)).toEqual([other]);
      expect(await store.deleteDead(Q, [b, b])).toEqual([b]);
      expect(await store.dead(Q)).toEqual([]);
      expect(await store.get(Q, b, 3)).toBeUndefined();
      // The dead count follows.
      expect((await store.stats(Q, 3)).dead).toBe(0);
    });

    it(`${pauses ? 'keeps' : 'keeps no'} queue pause flags`, async () => {
      const store = opened();
      expect(hasQueuePauses(store)).toBe(pauses);
      if (!hasQueuePauses(store)) return;
      expect(await store.pausedQueues()).toEqual([]);
      await store.setQueuePaused('b', true, 5);
      await store.setQueuePaused('a', true, 6);
      await store.setQueuePaused('a', true, 7);
      expect(await store.pausedQueues()).toEqual(['a', 'b']);
      await store.setQueuePaused('b', false, 8);
      await store.setQueuePaused('c', false, 8);
      expect(await store.pausedQueues()).toEqual(['a']);
    });
  });
}

operatorContract('memory', () => ({ store: memoryStore() }), false);
operatorContract(
  'sqlite',
  () => {
    const path = `${tempPath('op')}.db`;
    return { store: sqliteStore({ path }), cleanup: () => removeDb(path) };
  },
  true,
);
describe.skipIf(!pgAvailable)('postgres', () => {
  operatorContract('postgres', () => ({ store: postgresStore({ connectionString: PG_URL, schema: fresh() }) }), true);
});

/**
 * Two runtimes on one store (two processes of a fleet): a flag set through
 * either store object pauses the queue in both, and clearing it resumes both.
 */
function fleetPause(name: string, stores: () => { a: Store; b: Store; cleanup?: () => void }) {
  it(`${name}: a queue paused in the store claims nothing in any runtime until resumed`, async () => {
    const { a, b, cleanup } = stores();
    const ran: string[] = [];
    const runtimes: Runtime[] = [];
    try {
      for (const [label, store] of [
        ['a', a],
        ['b', b],
      ] as const) {
        const rt = createRuntime({ store });
        runtimes.push(rt);
        rt.queue('mail', { handler: async () => void ran.push(label), pollMs: 20 });
      }
      await Promise.all(runtimes.map((rt) => rt.start()));
      if (!hasQueuePauses(a)) throw new Error('no pauses');
      await a.setQueuePaused('mail', true, Date.now());
      // Both runtimes read the flag (LISTEN on Postgres; the poll on SQLite) before anything is enqueued.
      await until(
        () => runtimes.every((rt) => JSON.stringify(rt.queue('mail').actor.getSnapshot().value).includes('paused')),
        5000,
        'both queues paused',
      );
      for (let i = 0; i < 6; i++) await runtimes[i % 2]!.queue('mail').enqueue({ i });
      await new Promise((r) => setTimeout(r, 300));
      expect(ran).toEqual([]);
      expect((await runtimes[0]!.queue('mail').stats()).pending).toBe(6);
      await a.setQueuePaused('mail', false, Date.now());
      await until(() => ran.length === 6, 5000, 'all six tasks run after the resume');
      // A runtime's own pause() still pauses it alone, and the store's resume does not undo it.
      runtimes[1]!.queue('mail').pause();
      await a.setQueuePaused('mail', true, Date.now());
      await a.setQueuePaused('mail', false, Date.now());
      await until(
        () => JSON.stringify(runtimes[0]!.queue('mail').actor.getSnapshot().value).includes('working'),
        5000,
        'a resumed',
      );
      await new Promise((r) => setTimeout(r, 1200));
      expect(JSON.stringify(runtimes[1]!.queue('mail').actor.getSnapshot().value)).toContain('paused');
    } finally {
      for (const rt of runtimes) await rt.stop();
      cleanup?.();
    }
  }, 20_000);
}

describe('the store pause flag is obeyed by every runtime on the store', () => {
  fleetPause('sqlite (two connections to one file)', () => {
    const path = `${tempPath('op-pause')}.db`;
    return { a: sqliteStore({ path }), b: sqliteStore({ path }), cleanup: () => removeDb(path) };
  });
  describe.skipIf(!pgAvailable)('postgres', () => {
    fleetPause('postgres (two pools on one schema)', () => {
      const schema = fresh('pause');
      return {
        a: postgresStore({ connectionString: PG_URL, schema }),
        b: postgresStore({ connectionString: PG_URL, schema }),
      };
    });
  });
});

describe('faults and bad input', () => {
  it('a failing read of the pause flags leaves the queue working, is reported once per streak, and is retried', async () => {
    const path = `${tempPath('op-fault')}.db`;
    const base = sqliteStore({ path });
    let failing = true;
    let reads = 0;
    // The store with its flag read broken (a lost connection, a locked file): injected, not simulated by a flag in keel.
    const store: Store = {
      ...base,
      pausedQueues: async () => {
        reads++;
        if (failing) throw new KeelError('STORE_UNAVAILABLE', 'injected: the flags cannot be read');
        return base.pausedQueues();
      },
    } as Store;
    const reports: string[] = [];
    const rt = createRuntime({ store, onError: (_e, detail) => reports.push(detail) });
    const ran: string[] = [];
    const mail = rt.queue('mail', { handler: async (t) => void ran.push(t.id), pollMs: 20 });
    try {
      await rt.start();
      await mail.enqueue({});
      await until(() => ran.length === 1, 5000, 'the task ran while the flags could not be read');
      await until(() => reads >= 3, 10_000, 'three reads (the first and two polls)');
      expect(reports.filter((d) => /pause flags/.test(d))).toHaveLength(1);
      failing = false;
      await base.setQueuePaused('mail', true, Date.now());
      await until(
        () => JSON.stringify(mail.actor.getSnapshot().value).includes('paused'),
        5000,
        'the flag obeyed once readable',
      );
      await mail.enqueue({});
      await new Promise((r) => setTimeout(r, 200));
      expect(ran).toHaveLength(1);
    } finally {
      await rt.stop();
      removeDb(path);
    }
  }, 20_000);

  it('q.deleteDead refuses what is not a list of ids, naming the option', async () => {
    const rt = createRuntime();
    const q = rt.queue('q', { handler: async () => {} });
    await rt.start();
    try {
      const err = await q.deleteDead('1' as never).catch((e: unknown) => e as KeelError);
      expect(err).toBeInstanceOf(KeelError);
      expect((err as KeelError).code).toBe('INVALID_OPTIONS');
      expect((err as KeelError).message).toMatch(/deleteDead.*ids.*got '1'/);
      expect(await q.deleteDead([])).toEqual([]);
    } finally {
      await rt.stop();
    }
  });
});
