/**
 * Durable subscriptions with `groupBy` and `groupConcurrency` (issue #15) on
 * every store: per-entity order through a failing-then-recovering downstream
 * while entities run in parallel, the group each event's task gets, and the
 * path stored with the subscription, so a publisher that never subscribed
 * groups with it too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, type Store } from '../../src/index.js';
import { groupOf } from '../../src/stores/durableFanOut.js';
import { type DurableBus, isDurableBus } from '../../src/stores/store.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { sleep, until } from '../fixtures/wait.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 5, jitter: false };

interface Update {
  userId: string;
  version: number;
}

describe('groupOf: the group a payload path names', () => {
  const event = (data: unknown) => ({ topic: 't', time: 0, envelope: JSON.stringify({ id: 'x', type: 't', data }) });
  it.each([
    [{ userId: 'u1' }, 'userId', 'u1'],
    [{ userId: 42 }, 'userId', '42'],
    [{ userId: -7 }, 'userId', '-7'],
    [{ customer: { id: 'c9' } }, 'customer.id', 'c9'],
    [{ userId: '' }, 'userId', undefined],
    [{ userId: 1.5 }, 'userId', undefined],
    [{ userId: 2 ** 60 }, 'userId', undefined],
    [{ userId: null }, 'userId', undefined],
    [{ userId: { id: 1 } }, 'userId', undefined],
    [{ userId: true }, 'userId', undefined],
    [{ userId: 'a\u0000b' }, 'userId', undefined],
    [{ userId: '\uD800' }, 'userId', undefined],
    [{ other: 'u1' }, 'userId', undefined],
    [{ customer: 'c9' }, 'customer.id', undefined],
    [{ userId: 'u1' }, 'toString', undefined],
    ['u1', 'length', undefined],
    [null, 'userId', undefined],
  ])('%j at %s gives %j', (data, path, group) => {
    expect(groupOf(event(data), path)).toBe(group);
  });

  it('an envelope that is not JSON gives no group', () => {
    expect(groupOf({ topic: 't', time: 0, envelope: '{' }, 'userId')).toBeUndefined();
  });
});

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`durable subscriptions grouped by a payload field on ${kind.name}`, () => {
    const runtimes: Runtime[] = [];
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const rt of runtimes.splice(0)) await rt.stop();
      for (const c of cleanups.splice(0)) await c();
    });

    /** A fresh data set; each call of the returned function is a runtime on it (another "process") and its store. */
    function fleet(): () => { rt: Runtime; store: Store } {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      return () => {
        const store = make();
        const rt = createRuntime({ store, bus: { refreshMs: 20 } });
        runtimes.push(rt);
        return { rt, store };
      };
    }

    it("delivers each user's updates one after another in publish order through a failing-then-recovering downstream, users in parallel", async () => {
      const runtime = fleet();
      const { rt } = runtime();
      const { rt: publisher } = runtime(); // never subscribes: groups with the path the store keeps
      const USERS = 4;
      const VERSIONS = 4;
      const applied = new Map<string, number[]>();
      const running = new Map<string, number>();
      let sameUserAtOnce = 0;
      let usersAtOnce = 0;
      rt.bus.subscribe(
        'profile.updated',
        async (p: Update, _event, delivery) => {
          const here = (running.get(p.userId) ?? 0) + 1;
          running.set(p.userId, here);
          if (here > 1) sameUserAtOnce++;
          usersAtOnce = Math.max(usersAtOnce, [...running.values()].filter((n) => n > 0).length);
          try {
            await sleep(5);
            // The downstream refuses each user's first update twice, then recovers.
            if (p.version === 1 && delivery.attempt <= 2) throw new Error('downstream 503');
            const list = applied.get(p.userId) ?? [];
            list.push(p.version);
            applied.set(p.userId, list);
          } finally {
            running.set(p.userId, running.get(p.userId)! - 1);
          }
        },
        {
          durable: 'crm-sync',
          groupBy: 'userId',
          groupConcurrency: 1,
          concurrency: USERS,
          retry: { ...FAST, maxAttempts: 5 },
        },
      );
      await rt.start();
      await publisher.start();
      for (let v = 1; v <= VERSIONS; v++) {
        for (let u = 1; u <= USERS; u++) publisher.bus.publish('profile.updated', { userId: `u${u}`, version: v });
      }
      await publisher.bus.flush();
      const total = () => [...applied.values()].reduce((n, l) => n + l.length, 0);
      await until(() => total() === USERS * VERSIONS, 20_000, 'every update applied');
      await rt.queue('bus:crm-sync').drain();
      for (let u = 1; u <= USERS; u++) expect(applied.get(`u${u}`), `u${u}`).toEqual([1, 2, 3, 4]);
      expect(sameUserAtOnce).toBe(0);
      expect(usersAtOnce).toBeGreaterThan(1);
      expect(await rt.queue('bus:crm-sync').stats()).toMatchObject({ dead: 0, succeeded: USERS * VERSIONS });
    });

    it('gives each task the group its payload names (strings, safe integers, nested paths; none otherwise), replays included', async () => {
      const runtime = fleet();
      const { rt, store } = runtime();
      const groups = new Map<string, string | undefined>();
      const seen = (name: string) => async (p: { tag: string }, _e: unknown, d: { taskId: string }) => {
        groups.set(`${name}:${p.tag}`, (await rt.queue(`bus:${name}`).get(d.taskId))?.group);
      };
      rt.bus.subscribe('order.placed', seen('flat'), { durable: 'flat', groupBy: 'customer' });
      rt.bus.subscribe('order.placed', seen('plain'), { durable: 'plain' });
      await rt.start();
      const orders = [
        { tag: 'text', customer: 'c1', account: { id: 'a1' } },
        { tag: 'number', customer: 42, account: { id: 7 } },
        { tag: 'missing' },
        { tag: 'object', customer: { id: 'c2' } },
      ];
      for (const o of orders) rt.bus.publish('order.placed', o);
      await rt.bus.flush();
      // A subscription made later replays the log with its own path.
      rt.bus.subscribe('order.placed', seen('nested'), { durable: 'nested', groupBy: 'account.id', from: 'earliest' });
      for (const name of ['flat', 'plain', 'nested']) await rt.queue(`bus:${name}`).drain();
      await until(() => groups.size === 12, 10_000, 'every delivery');
      expect(Object.fromEntries(groups)).toEqual({
        'flat:text': 'c1',
        'flat:number': '42',
        'flat:missing': undefined,
        'flat:object': undefined,
        'plain:text': undefined,
        'plain:number': undefined,
        'plain:missing': undefined,
        'plain:object': undefined,
        'nested:text': 'a1',
        'nested:number': '7',
        'nested:missing': undefined,
        'nested:object': undefined,
      });
      expect(isDurableBus(store)).toBe(true);
      const listed = await (store as Store & DurableBus).listDurables();
      expect(listed.map((s) => [s.name, s.groupBy])).toEqual([
        ['flat', 'customer'],
        ['nested', 'account.id'],
        ['plain', undefined],
      ]);
    });

    it('keeps the path with the subscription: saving again moves it or removes it', async () => {
      const runtime = fleet();
      const { rt, store } = runtime();
      await rt.start();
      const bus = store as Store & DurableBus;
      expect(await bus.saveDurable('s', 'a.>', 1, undefined, 'userId')).toBe(true);
      expect((await bus.listDurables())[0]).toMatchObject({ name: 's', pattern: 'a.>', groupBy: 'userId' });
      expect(await bus.saveDurable('s', 'b.>', 2, undefined, 'user.id')).toBe(false);
      expect((await bus.listDurables())[0]).toMatchObject({ name: 's', pattern: 'b.>', groupBy: 'user.id' });
      expect(await bus.saveDurable('s', 'b.>', 3)).toBe(false);
      expect((await bus.listDurables())[0]).not.toHaveProperty('groupBy');
    });
  });
}
