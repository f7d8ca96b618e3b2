import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError, type Runtime, type Store } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';

let runtimes: Runtime[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(runtimes.map((rt) => rt.stop()));
  runtimes = [];
  for (const c of cleanups.splice(0)) await c();
});

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

/** How many components the runtime would start and stop (internal: a closed queue must not stay listed). */
const components = (rt: Runtime) => (rt as unknown as { components: unknown[] }).components.length;

describe.each(sharedStoreKinds().map((k) => [k.name, k] as const))('queue.close() on %s', (_name, kind) => {
  const setup = () => {
    const { make, cleanup } = kind.fresh();
    cleanups.push(cleanup);
    const clock = new TestClock();
    const store: Store = make();
    const rt = createRuntime({ store, clock, onError: () => {} });
    runtimes.push(rt);
    return { rt, clock, store, make };
  };
  /** Timers a started runtime on this store keeps with no queue at all (a durable-bus refresh on stores that poll). */
  const runtimeTimers = async (): Promise<number> => {
    const { make, cleanup } = kind.fresh();
    cleanups.push(cleanup);
    const clock = new TestClock();
    const bare = createRuntime({ store: make(), clock, onError: () => {} });
    await bare.start();
    const n = clock.pending;
    await bare.stop();
    return n;
  };

  it.skipIf(!kind.available)(
    'frees the actor, timers and bus subscriptions; the handle refuses with CLOSED; the name is reusable',
    async () => {
      const { rt, clock } = setup();
      const seen: number[] = [];
      const q = rt.queue('jobs', {
        breaker: 'api',
        handler: async (t) => {
          seen.push(t.payload as number);
        },
      });
      await rt.start();
      await q.enqueue(1);
      await q.drain();
      expect(seen).toEqual([1]);
      const before = components(rt);
      // The queue listens for its breaker closing (to ungate).
      expect(rt.bus.publish('breaker.api.closed', {})).toBe(1);

      await q.close();
      expect(rt.system.system.get('queue.jobs')).toBeUndefined();
      expect(q.actor.getSnapshot().status).toBe('done');
      expect(rt.bus.publish('breaker.api.closed', {})).toBe(0);
      expect(components(rt)).toBe(before - 1);
      // The breaker is the runtime's, not the queue's: its call-deadline timer goes with it.
      rt.breaker('api').dispose();
      expect(clock.pending).toBe(await runtimeTimers());
      const refused = await q.enqueue(2).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(KeelError);
      expect((refused as KeelError).code).toBe('CLOSED');
      expect((refused as Error).message).toContain("queue('jobs').enqueue");
      await expect(q.stats()).rejects.toMatchObject({ code: 'CLOSED' });
      // Closing twice is one close.
      await q.close();

      const again = rt.queue('jobs', {
        handler: async (t) => {
          seen.push(10 * (t.payload as number));
        },
      });
      expect(again).not.toBe(q);
      expect(rt.system.system.get('queue.jobs')).toBe(again.actor);
      await again.enqueue(3);
      await again.drain();
      expect(seen).toEqual([1, 30]);
    },
  );

  it.skipIf(!kind.available)('waits for active tasks like stop does', async () => {
    const { rt } = setup();
    const gate = deferred();
    const started = deferred();
    const done: number[] = [];
    const q = rt.queue('slow', {
      handler: async (t) => {
        started.resolve();
        await gate.promise;
        done.push(t.payload as number);
      },
    });
    await rt.start();
    await q.enqueue(7);
    await started.promise;
    let closed = false;
    const closing = q.close().then(() => {
      closed = true;
    });
    await settle();
    expect(closed).toBe(false);
    // Enqueues after close() began are refused: the queue takes nothing new.
    await expect(q.enqueue(8)).rejects.toMatchObject({ code: 'CLOSED' });
    gate.resolve();
    await closing;
    expect(done).toEqual([7]);
    const fresh = rt.queue('slow');
    expect((await fresh.stats()).pending).toBe(0);
  });

  it.skipIf(!kind.available)(
    'a task still running after graceMs goes back to pending for the next queue of that name',
    async () => {
      const { rt, clock } = setup();
      const started = deferred();
      const q = rt.queue('stuck', {
        graceMs: 100,
        handler: async (t) => {
          started.resolve();
          await new Promise((_, reject) => t.signal.addEventListener('abort', () => reject(new Error('aborted'))));
        },
      });
      await rt.start();
      await q.enqueue('x');
      await started.promise;
      const closing = q.close();
      await clock.advance(100);
      await closing;
      expect(clock.pending).toBe(await runtimeTimers());
      const seen: unknown[] = [];
      const next = rt.queue('stuck', {
        handler: async (t) => {
          seen.push(t.payload);
        },
      });
      await next.drain();
      expect(seen).toEqual(['x']);
    },
  );

  it.skipIf(!kind.available)('closing before start: the runtime never starts it, and the name is free', async () => {
    const { rt } = setup();
    const q = rt.queue('early', { handler: async () => {} });
    await q.close();
    expect(rt.system.system.get('queue.early')).toBeUndefined();
    const seen: unknown[] = [];
    const again = rt.queue('early', {
      handler: async (t) => {
        seen.push(t.payload);
      },
    });
    await rt.start();
    await again.enqueue('y');
    await again.drain();
    expect(seen).toEqual(['y']);
  });
});

describe('breaker.dispose()', () => {
  it('while open: frees the open timer, leaves the runtime list, and the name is reusable', async () => {
    const clock = new TestClock();
    const rt = createRuntime({ clock });
    runtimes.push(rt);
    const before = components(rt);
    const sms = rt.breaker('sms', { failureThreshold: 1, resetTimeoutMs: 60_000 });
    expect(components(rt)).toBe(before + 1);
    await sms
      .call(() => {
        throw new Error('down');
      })
      .catch(() => {});
    expect(sms.state).toBe('open');
    expect(clock.pending).toBeGreaterThan(0);
    sms.dispose();
    expect(clock.pending).toBe(0);
    expect(rt.system.system.get('breaker.sms')).toBeUndefined();
    expect(components(rt)).toBe(before);
    const again = rt.breaker('sms', { failureThreshold: 1 });
    expect(again).not.toBe(sms);
    expect(again.state).toBe('closed');
  });
});
