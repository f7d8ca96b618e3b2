import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, memoryStore, postgresStore, type Runtime, sqliteStore } from '../../src/index.js';
import type { Store } from '../../src/stores/store.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const fresh = freshSchemas('fair');

/** Each store kind, fresh; `cleanup` removes what it left. */
const kinds: { name: string; make: () => { store: Store; cleanup?: () => void }; skip?: boolean }[] = [
  { name: 'memory', make: () => ({ store: memoryStore() }) },
  {
    name: 'sqlite',
    make: () => {
      const path = `${tempPath('fair')}.db`;
      return { store: sqliteStore({ path }), cleanup: () => removeDb(path) };
    },
  },
  {
    name: 'postgres',
    make: () => ({ store: postgresStore({ connectionString: PG_URL, schema: fresh() }) }),
    skip: !pgAvailable,
  },
];

for (const kind of kinds) {
  describe.skipIf(kind.skip === true)(`groups are served fairly: ${kind.name}`, () => {
    let store: Store;
    let cleanup: (() => void) | undefined;
    let rt: Runtime | undefined;
    afterEach(async () => {
      await rt?.stop();
      rt = undefined;
      await store.close();
      cleanup?.();
    });

    it("tenant B, enqueued behind tenant A's 10,000 pending tasks, is served within two claims", {
      timeout: 60_000,
    }, async () => {
      ({ store, cleanup } = kind.make());
      await store.open();
      for (let i = 0; i < 10_000; i += 2000) {
        await store.enqueue(
          'q',
          Array.from({ length: 2000 }, (_, j) => ({ payload: `{"n":${i + j}}`, runAt: 0, group: 'A' })),
          0,
        );
      }
      const first = await store.claim('q', { limit: 50, now: 1, leaseUntil: 100_000, token: 'c0' });
      expect(first.every((t) => t.group === 'A')).toBe(true);
      await store.enqueue(
        'q',
        Array.from({ length: 10 }, (_, j) => ({ payload: `{"b":${j}}`, runAt: 2, group: 'B' })),
        2,
      );
      let claims = 0;
      let bDone = 0;
      while (bDone < 10 && claims < 10) {
        const got = await store.claim('q', { limit: 50, now: 3 + claims, leaseUntil: 100_000, token: `c${++claims}` });
        bDone += got.filter((t) => t.group === 'B').length;
      }
      expect(bDone).toBe(10);
      expect(claims).toBeLessThanOrEqual(2);
    });

    it("a backlog over 10,000 groups is worked off, each group's tasks in enqueue order", {
      timeout: 120_000,
    }, async () => {
      ({ store, cleanup } = kind.make());
      rt = createRuntime({ store });
      const order = new Map<string, number[]>();
      const q = rt.queue('many', {
        concurrency: 16,
        groupConcurrency: 1,
        handler: (task) => {
          const { g, n } = task.payload as { g: string; n: number };
          order.set(g, [...(order.get(g) ?? []), n]);
        },
      });
      await rt.start();
      const tasks = Array.from({ length: 20_000 }, (_, n) => ({ g: `g${n % 10_000}`, n }));
      await Promise.all(tasks.map((t) => q.enqueue(t, { group: t.g })));
      await q.drain();
      expect(order.size).toBe(10_000);
      for (const [g, ns] of order) expect(ns, g).toEqual([...ns].sort((a, b) => a - b));
      expect((await q.stats()).succeeded).toBe(20_000);
    });
  });
}
