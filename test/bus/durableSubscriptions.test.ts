/**
 * Durable bus subscriptions (issue #16.5) on every store: at-least-once
 * delivery per subscription name with the queue's retries and dead letters,
 * wildcards, `from: 'earliest'` within the retention, publishers that never
 * subscribed, unsubscribe and delete, and a store that fails to record.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type BusEvent, createRuntime, type Runtime, type Store } from '../../src/index.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { sleep, until } from '../fixtures/wait.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 5, jitter: false };

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`durable bus subscriptions on ${kind.name}`, () => {
    const runtimes: Runtime[] = [];
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const rt of runtimes.splice(0)) await rt.stop();
      for (const c of cleanups.splice(0)) await c();
    });

    /** A fresh data set; each call of the returned function is a runtime on it (another "process"). */
    function fleet(): (options?: { refreshMs?: number; retentionMs?: number; store?: (s: Store) => Store }) => Runtime {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      return (options = {}) => {
        const store = options.store ? options.store(make()) : make();
        const rt = createRuntime({
          store,
          bus: {
            refreshMs: options.refreshMs ?? 20,
            ...(options.retentionMs !== undefined && { retentionMs: options.retentionMs }),
          },
        });
        runtimes.push(rt);
        return rt;
      };
    }

    async function drained(rt: Runtime, name: string): Promise<void> {
      await rt.bus.flush();
      await rt.queue(`bus:${name}`).drain();
    }

    it('delivers each event at least once with the payload and envelope, retrying and dead-lettering', async () => {
      const runtime = fleet();
      const rt = runtime();
      const seen: { payload: unknown; event: BusEvent; attempt: number }[] = [];
      rt.bus.subscribe(
        'user.updated',
        (payload: { id: number; bad?: boolean }, event, delivery) => {
          seen.push({ payload, event, attempt: delivery.attempt });
          if (payload.bad) throw new Error('downstream refused');
          if (delivery.attempt === 1 && payload.id === 2) throw new Error('flaky once');
        },
        { durable: 'crm-sync', retry: { ...FAST, maxAttempts: 3 } },
      );
      await rt.start();
      expect(rt.bus.publish('user.updated', { id: 1 })).toBe(0); // no plain subscriber: the count is unchanged
      rt.bus.publish('user.updated', { id: 2 });
      rt.bus.publish('user.updated', { id: 3, bad: true });
      rt.bus.publish('user.created', { id: 4 });
      await drained(rt, 'crm-sync');
      const ok = seen.filter((s) => !(s.payload as { bad?: boolean }).bad);
      expect(ok.map((s) => [(s.payload as { id: number }).id, s.attempt])).toEqual([
        [1, 1],
        [2, 1],
        [2, 2],
      ]);
      expect(seen[0]!.event).toMatchObject({ type: 'user.updated', data: { id: 1 } });
      expect(typeof seen[0]!.event.id).toBe('string');
      expect(typeof seen[0]!.event.time).toBe('number');
      // The failing event used its 3 attempts and is a dead letter carrying its envelope.
      expect(seen.filter((s) => (s.payload as { bad?: boolean }).bad).map((s) => s.attempt)).toEqual([1, 2, 3]);
      const dead = await rt.queue('bus:crm-sync').dead();
      expect(dead).toHaveLength(1);
      expect(dead[0]!.payload).toMatchObject({ type: 'user.updated', data: { id: 3, bad: true } });
      expect(dead[0]!.error).toContain('downstream refused');
      expect(await rt.queue('bus:crm-sync').stats()).toMatchObject({ pending: 0, active: 0, succeeded: 2, dead: 1 });
    });

    it('matches wildcard patterns (* one token, > the rest)', async () => {
      const rt = fleet()();
      const got: Record<string, string[]> = { one: [], rest: [] };
      rt.bus.subscribe('order.*', (_p, e) => void got.one!.push(e.type), { durable: 'one' });
      rt.bus.subscribe('order.>', (_p, e) => void got.rest!.push(e.type), { durable: 'rest' });
      await rt.start();
      for (const t of ['order.placed', 'order.placed.eu', 'order', 'user.placed']) rt.bus.publish(t, {});
      await drained(rt, 'one');
      await drained(rt, 'rest');
      expect(got.one).toEqual(['order.placed']);
      expect(got.rest).toEqual(['order.placed', 'order.placed.eu']);
    });

    it('records for subscriptions another runtime made, and hands each event to one runtime per name', async () => {
      const runtime = fleet();
      const a = runtime();
      const b = runtime();
      const publisher = runtime(); // never subscribes
      const handled: string[] = [];
      const handledBy: Record<string, number> = { a: 0, b: 0 };
      for (const [name, rt] of [
        ['a', a],
        ['b', b],
      ] as const) {
        rt.bus.subscribe(
          'invoice.>',
          async (p: { n: number }) => {
            handled.push(String(p.n));
            handledBy[name]!++;
            await sleep(1);
          },
          { durable: 'billing', concurrency: 2 },
        );
        await rt.start();
      }
      await publisher.start();
      for (let n = 0; n < 40; n++) publisher.bus.publish('invoice.created', { n });
      await publisher.bus.flush();
      await until(async () => handled.length >= 40, 10_000, '40 deliveries');
      await a.queue('bus:billing').drain();
      await b.queue('bus:billing').drain();
      // Every event once (no failures, so no redelivery), whichever runtime took it.
      expect(handled.sort()).toEqual(Array.from({ length: 40 }, (_, n) => String(n)).sort());
      expect(handledBy.a! + handledBy.b!).toBe(40);
    });

    it('a publisher that started before the subscription records for it once it has read it', async () => {
      const runtime = fleet();
      const publisher = runtime({ refreshMs: 10 });
      await publisher.start();
      const sub = runtime();
      const got: number[] = [];
      sub.bus.subscribe('late.>', (p: { n: number }) => void got.push(p.n), { durable: 'late' });
      await sub.start();
      await sleep(80); // several refreshes of the publisher
      publisher.bus.publish('late.one', { n: 1 });
      await publisher.bus.flush();
      await until(() => got.length === 1, 5000, 'the delivery');
      expect(got).toEqual([1]);
    });

    it("does not replay the past unless from: 'earliest', which replays the log within the retention", async () => {
      const runtime = fleet();
      const rt = runtime();
      rt.bus.subscribe('order.>', () => {}, { durable: 'audit' }); // makes the bus record and log
      await rt.start();
      rt.bus.publish('order.placed', { n: 1 });
      rt.bus.publish('order.shipped', { n: 2 });
      rt.bus.publish('order.placed', { n: 3 });
      await drained(rt, 'audit');
      const fromNow: number[] = [];
      const fromStart: number[] = [];
      rt.bus.subscribe('order.placed', (p: { n: number }) => void fromNow.push(p.n), { durable: 'late-now' });
      rt.bus.subscribe('order.placed', (p: { n: number }) => void fromStart.push(p.n), {
        durable: 'late-earliest',
        from: 'earliest',
      });
      rt.bus.publish('order.placed', { n: 4 });
      await drained(rt, 'late-now');
      await drained(rt, 'late-earliest');
      expect(fromNow).toEqual([4]);
      expect(fromStart).toEqual([1, 3, 4]);

      // Past the retention, the log has nothing to replay.
      const short = runtime({ retentionMs: 30 });
      short.bus.subscribe('ping', () => {}, { durable: 'keeps-logging' });
      await short.start();
      short.bus.publish('ping', { n: 1 });
      await short.bus.flush();
      await sleep(60);
      const tooLate: number[] = [];
      short.bus.subscribe('ping', (p: { n: number }) => void tooLate.push(p.n), {
        durable: 'too-late',
        from: 'earliest',
      });
      short.bus.publish('ping', { n: 2 });
      await drained(short, 'too-late');
      expect(tooLate).toEqual([2]);
    });

    it('unsubscribe stops delivery here but events are kept; unsubscribeDurable deletes the subscription', async () => {
      const rt = fleet()();
      const got: number[] = [];
      const off = rt.bus.subscribe('job.done', (p: { n: number }) => void got.push(p.n), { durable: 'jobs' });
      await rt.start();
      rt.bus.publish('job.done', { n: 1 });
      await drained(rt, 'jobs');
      off();
      rt.bus.publish('job.done', { n: 2 });
      await rt.bus.flush();
      await sleep(30);
      expect(got).toEqual([1]);
      expect((await rt.queue('bus:jobs').stats()).pending).toBe(1);
      // Subscribing again under the name gets what was recorded meanwhile.
      rt.bus.subscribe('job.done', (p: { n: number }) => void got.push(p.n), { durable: 'jobs' });
      await drained(rt, 'jobs');
      expect(got).toEqual([1, 2]);
      expect(await rt.bus.unsubscribeDurable('jobs')).toBe(true);
      expect(await rt.bus.unsubscribeDurable('jobs')).toBe(false);
      rt.bus.publish('job.done', { n: 3 });
      await rt.bus.flush();
      expect(await rt.queue('bus:jobs').stats()).toMatchObject({ pending: 0, succeeded: 2 });
    });

    it('a store that fails to record: publish still delivers locally, flush rejects, bus.record.failed is published', async () => {
      let failing = false;
      const rt = fleet()({
        store: (s) => {
          const real = (s as unknown as { recordEvents: (...a: unknown[]) => Promise<number> }).recordEvents;
          return Object.assign(Object.create(Object.getPrototypeOf(s)), s, {
            recordEvents: (...args: unknown[]) =>
              failing ? Promise.reject(new Error('disk full')) : real.apply(s, args),
          }) as Store;
        },
      });
      const failures: { types: string[] }[] = [];
      const plain: number[] = [];
      rt.bus.subscribe('bus.record.failed', (p: { types: string[] }) => void failures.push(p));
      rt.bus.subscribe('evt', (p: { n: number }) => void plain.push(p.n));
      const durable: number[] = [];
      rt.bus.subscribe('evt', (p: { n: number }) => void durable.push(p.n), { durable: 'd' });
      await rt.start();
      failing = true;
      expect(rt.bus.publish('evt', { n: 1 })).toBe(1);
      await expect(rt.bus.flush()).rejects.toThrow('disk full');
      expect(failures).toEqual([expect.objectContaining({ types: ['evt'] })]);
      failing = false;
      rt.bus.publish('evt', { n: 2 });
      await drained(rt, 'd');
      expect(plain).toEqual([1, 2]);
      expect(durable).toEqual([2]);
    });
  });
}
