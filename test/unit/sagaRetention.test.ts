import { describe, expect, it } from 'vitest';
import { PRUNE_BATCH } from '../../src/actors/saga/pruner.js';
import { DEFAULT_SAGA_RETENTION } from '../../src/actors/saga/retention.js';
import { settle } from '../../src/testing/index.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { storeRuntimes } from '../fixtures/storeRuntimes.js';
import { until } from '../fixtures/wait.js';

const GROWTH = process.env.KEEL_GROWTH === '1';
/** Sagas the bound is checked over: 100,000 with `KEEL_GROWTH=1` (`KEEL_GROWTH_SAGAS` sets another number). */
const SAGAS = GROWTH ? Number(process.env.KEEL_GROWTH_SAGAS ?? 100_000) : 3_000;

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`saga retention (${kind.name})`, () => {
    const runtime = storeRuntimes(kind);
    const stored = async (saga: {
      list(o: { limit: number; after?: string }): Promise<{ items: { id: string }[]; next?: string }>;
    }) => {
      const ids: string[] = [];
      let after: string | undefined;
      do {
        const page = await saga.list({ limit: 1_000, ...(after && { after }) });
        ids.push(...page.items.map((i) => i.id));
        after = page.next;
      } while (after);
      return ids;
    };

    it('keeps the newest `count` of a status; execute of a retained id returns the stored result, of a pruned id runs again', async () => {
      const { rt, clock } = runtime();
      let runs = 0;
      const saga = rt.saga('ping', {
        retention: { completed: { count: 3 } },
        steps: [{ name: 'p', run: (ctx) => ++runs && `pong-${ctx.sagaId}` }],
      });
      await rt.start();
      for (let i = 0; i < 10; i++) {
        await saga.execute(null, { id: `p${i}` });
        await clock.advance(10);
      }
      expect(await stored(saga)).toHaveLength(10);
      // The timer pass (at most a minute apart) prunes what is past the count.
      await clock.advance(60_000);
      await until(async () => (await stored(saga)).length === 3, 10_000, 'the pruner');
      expect(await stored(saga)).toEqual(['p9', 'p8', 'p7']);
      expect(runs).toBe(10);
      // Within the retention an id is idempotent; once pruned, it is a new run.
      expect(await saga.execute(null, { id: 'p9' })).toMatchObject({ status: 'completed', results: { p: 'pong-p9' } });
      expect(runs).toBe(10);
      expect(await saga.get('p0')).toBeUndefined();
      await saga.execute(null, { id: 'p0' });
      expect(runs).toBe(11);
    });

    it('deletes runs older than `ageMs` after they finished, per status; running sagas are never pruned', async () => {
      const { rt, clock } = runtime();
      const saga = rt.saga('risky', {
        retention: { compensated: { ageMs: 10_000 }, completed: { ageMs: Number.POSITIVE_INFINITY } },
        steps: [
          {
            name: 'a',
            run: (ctx) => {
              if (ctx.input === 'fail') throw new Error('no');
              return 1;
            },
          },
          { name: 'b', waitFor: 'go' },
        ],
      });
      await rt.start();
      await saga.execute('fail', { id: 'f1' });
      const waiting = saga.execute('ok', { id: 'w1' });
      void waiting.catch(() => {});
      await settle();
      // The clock moves on while the pruner's passes (real I/O on a durable store) run.
      await until(
        async () => {
          await clock.advance(1_000);
          return (await saga.get('f1')) === undefined;
        },
        10_000,
        'the old compensated run to go',
      );
      expect(clock.now()).toBeGreaterThan(11_000);
      expect(await saga.get('w1')).toMatchObject({ status: 'running' });
    });

    it(`stays bounded while ${SAGAS.toLocaleString('en')} sagas finish (count-triggered passes, no timer)`, {
      timeout: GROWTH ? 1_800_000 : 120_000,
    }, async () => {
      const { rt, clock } = runtime();
      const total = SAGAS;
      const began = Date.now();
      const keep = GROWTH ? 1_000 : 100;
      const saga = rt.saga('tick', { retention: { completed: { count: keep } }, steps: [{ name: 't', run: () => 1 }] });
      await rt.start();
      let most = 0;
      const chunk = 250;
      for (let done = 0; done < total; done += chunk) {
        await Promise.all(Array.from({ length: chunk }, (_, i) => saga.execute(null, { id: `t${done + i}` })));
        // As in a live process, time passes and the event loop turns between bursts (the pruner yields to it).
        await clock.advance(1);
        await new Promise((r) => setImmediate(r));
        if ((done / chunk) % 4 === 3) most = Math.max(most, (await stored(saga)).length);
      }
      await until(async () => (await stored(saga)).length <= keep + PRUNE_BATCH, 20_000, 'the last pass');
      // Never more than the kept count plus what finishes between two passes (a pass starts every PRUNE_BATCH).
      expect(most).toBeLessThanOrEqual(keep + 3 * PRUNE_BATCH);
      expect(await saga.get(`t${total - 1}`)).toMatchObject({ status: 'completed' });
      const mb = (b: number) => Math.round(b / 1024 / 1024);
      const { heapUsed, rss } = process.memoryUsage();
      console.log(
        `saga growth ${kind.name}: ${total} sagas in ${Math.round((Date.now() - began) / 1000)} s; ` +
          `at most ${most} kept; heap ${mb(heapUsed)} MB, rss ${mb(rss)} MB`,
      );
    });
  });
}

describe('saga retention defaults', () => {
  it('keep the newest 1,000 finished runs of each status for 7 days', () => {
    expect(DEFAULT_SAGA_RETENTION).toEqual({ count: 1_000, ageMs: 604_800_000 });
  });
});
