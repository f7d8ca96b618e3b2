import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError, memoryStore, type Runtime } from '../../src/index.js';
import type { Store } from '../../src/stores/store.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { Gauge } from '../fixtures/gauge.js';
import { refusal } from '../fixtures/refusal.js';
import { until } from '../fixtures/wait.js';

describe('queue limits and enqueue priority/group: bad values are INVALID_OPTIONS naming the option', () => {
  const rt = createRuntime({});
  const cases: [object, string][] = [
    [{ globalConcurrency: 0 }, "'globalConcurrency'"],
    [{ globalConcurrency: 1.5 }, "'globalConcurrency'"],
    [{ groupConcurrency: 0 }, "'groupConcurrency'"],
    [{ groupConcurrency: '2' }, "'groupConcurrency'"],
    [{ rateLimit: { max: 0, perMs: 1000 } }, "'rateLimit.max'"],
    [{ rateLimit: { max: 5, perMs: 0 } }, "'rateLimit.perMs'"],
    [{ rateLimit: { max: 5 } }, "'rateLimit.perMs'"],
    [{ rateLimit: { max: 5, perMs: 100, burst: 2 } }, "'burst'"],
    [{ rateLimit: 5 }, "'rateLimit'"],
    [{ groupRateLimit: { max: 1.5, perMs: 100 } }, "'groupRateLimit.max'"],
    [{ groupRateLimit: { max: 1, perMs: Number.POSITIVE_INFINITY } }, "'groupRateLimit.perMs'"],
  ];
  for (const [options, named] of cases) {
    it(`refuses ${JSON.stringify(options)}`, () => {
      const e = refusal(() =>
        rt.queue(`bad${Math.random()}`.replace('.', ''), { handler: () => {}, ...options } as never),
      );
      expect(e.code).toBe('INVALID_OPTIONS');
      expect(e.message).toContain(named);
    });
  }

  it('refuses a non-integer or out-of-range priority and an empty or non-string group, per enqueue', async () => {
    const r = createRuntime({});
    const q = r.queue('p', {});
    await r.start();
    try {
      for (const [options, named] of [
        [{ priority: 1.5 }, "'priority'"],
        [{ priority: '1' }, "'priority'"],
        [{ priority: 2 ** 31 }, "'priority'"],
        [{ priority: Number.NaN }, "'priority'"],
        [{ group: '' }, "'group'"],
        [{ group: 7 }, "'group'"],
        [{ group: 'a\u0000b' }, "'group'"],
      ] as [object, string][]) {
        const e = await q.enqueue(1, options as never).then(
          () => undefined,
          (err: unknown) => err as KeelError,
        );
        expect(e, JSON.stringify(options)).toBeInstanceOf(KeelError);
        expect(e!.code).toBe('INVALID_OPTIONS');
        expect(e!.message).toContain(named);
      }
      expect((await q.stats()).pending).toBe(0);
      await q.enqueue(1, { priority: -3, group: 'g' });
      expect((await q.stats()).pending).toBe(1);
    } finally {
      await r.stop();
    }
  });
});

describe('a queue applies its limits at the claim', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  /** A memory store that counts claim calls. */
  function countingStore(): { store: Store; claims: () => number } {
    const store = memoryStore();
    let n = 0;
    const claim = store.claim.bind(store);
    store.claim = (queue, request) => {
      n++;
      return claim(queue, request);
    };
    return { store, claims: () => n };
  }

  it('globalConcurrency holds extra workers idle: never more running than the limit', async () => {
    rt = createRuntime({});
    const inFlight = new Gauge();
    const q = rt.queue('gc', {
      concurrency: 8,
      globalConcurrency: 3,
      handler: async () => {
        inFlight.enter();
        await new Promise((r) => setTimeout(r, 5));
        inFlight.leave();
      },
    });
    await rt.start();
    await Promise.all(Array.from({ length: 60 }, (_, i) => q.enqueue(i)));
    await q.drain();
    expect(inFlight.most).toBe(3);
  });

  it('globalConcurrency reached by its own tasks: no claim is asked (it could only come back empty); a settle claims again', async () => {
    const clock = new TestClock(1_000);
    const { store, claims } = countingStore();
    rt = createRuntime({ store, clock });
    const gates: (() => void)[] = [];
    let started = 0;
    const q = rt.queue('own', {
      concurrency: 8,
      pollMs: 1000,
      globalConcurrency: 3,
      handler: () => {
        started++;
        return new Promise<void>((r) => gates.push(r));
      },
    });
    await rt.start();
    await Promise.all(Array.from({ length: 10 }, (_, i) => q.enqueue(i)));
    await settle(10);
    expect(started).toBe(3);
    const before = claims();
    // Idle workers and the held-back wake-up (HELD_BACK_MS) would each ask the store for a slot that is ours.
    for (let i = 0; i < 20; i++) {
      await clock.advance(50);
      await settle(3);
    }
    expect(claims() - before).toBe(0);
    expect(started).toBe(3);
    // A settle frees a slot and claims at once, without waiting for a wake-up.
    gates.shift()!();
    await settle(10);
    expect(started).toBe(4);
    while (gates.length > 0) {
      gates.shift()!();
      await settle(10);
    }
    await q.drain();
    expect(started).toBe(10);
  });

  it('globalConcurrency: a returned handler frees its slot before its settle lands (the claim is told which tasks finished)', async () => {
    const store = memoryStore();
    const asked: { finished: string[]; settling: number }[] = [];
    let settling = 0;
    let releaseSettles!: () => void;
    const settlesHeld = new Promise<void>((r) => (releaseSettles = r));
    const claim = store.claim.bind(store);
    store.claim = (queue, request) => {
      asked.push({ finished: (request.finished ?? []).map((f) => f.id), settling });
      return claim(queue, request);
    };
    const settleOf = store.settle.bind(store);
    store.settle = async (queue, outcomes, now) => {
      settling++;
      await settlesHeld;
      settling--;
      return settleOf(queue, outcomes, now);
    };
    rt = createRuntime({ store });
    const inFlight = new Gauge();
    let ran = 0;
    const q = rt.queue('overlap', {
      concurrency: 2,
      globalConcurrency: 2,
      paused: true,
      handler: async () => {
        inFlight.enter();
        await Promise.resolve();
        inFlight.leave();
        ran++;
      },
    });
    await rt.start();
    await Promise.all(Array.from({ length: 6 }, (_, i) => q.enqueue(i)));
    q.resume();
    // With every settle held back, all six run: each claim names the tasks that returned as free slots.
    await until(() => ran === 6, 5000, 'six tasks run while no settle has landed');
    expect(inFlight.most).toBeLessThanOrEqual(2);
    const overlapping = asked.filter((a) => a.settling > 0);
    expect(overlapping.length).toBeGreaterThan(0);
    expect(overlapping.every((a) => a.finished.length > 0)).toBe(true);
    releaseSettles();
    await q.drain();
    expect((await q.stats()).succeeded).toBe(6);
  });

  it('globalConcurrency with a store that answers at once: settles keep pace with claims (not starved by a microtask chain)', async () => {
    const store = memoryStore();
    let mostFinished = 0;
    const claim = store.claim.bind(store);
    store.claim = (queue, request) => {
      mostFinished = Math.max(mostFinished, request.finished?.length ?? 0);
      return claim(queue, request);
    };
    rt = createRuntime({ store });
    const q = rt.queue('chain', { concurrency: 4, globalConcurrency: 8, paused: true, handler: () => {} });
    await rt.start();
    await Promise.all(Array.from({ length: 2000 }, (_, i) => q.enqueue(i)));
    q.resume();
    await q.drain();
    expect((await q.stats()).succeeded).toBe(2000);
    // Outcomes not yet stored stay within a window or two; starved settles would let them pile up to the thousands.
    expect(mostFinished).toBeLessThanOrEqual(16);
  });

  it('drain reads the store counts once at the end, not at every settle of a globalConcurrency-bound queue', async () => {
    const store = memoryStore();
    let stats = 0;
    const read = store.stats.bind(store);
    store.stats = (queue, now) => {
      stats++;
      return read(queue, now);
    };
    rt = createRuntime({ store });
    let ran = 0;
    const q = rt.queue('drained', { concurrency: 4, globalConcurrency: 2, paused: true, handler: () => void ran++ });
    await rt.start();
    await Promise.all(Array.from({ length: 40 }, (_, i) => q.enqueue(i)));
    q.resume();
    await q.drain();
    expect(ran).toBe(40);
    // Between a settle and the next claim's answer the engine holds nothing, yet it is not idle.
    expect(stats).toBeLessThanOrEqual(2);
  });

  it('a rate-limited queue starts at most max per window and, held back, looks again after a pause instead of spinning', async () => {
    const clock = new TestClock(1_000);
    const { store, claims } = countingStore();
    rt = createRuntime({ store, clock });
    const starts: number[] = [];
    const q = rt.queue('rate', {
      concurrency: 10,
      pollMs: 1000,
      rateLimit: { max: 4, perMs: 1000 },
      handler: () => {
        starts.push(clock.now());
      },
    });
    await rt.start();
    await Promise.all(Array.from({ length: 10 }, (_, i) => q.enqueue(i)));
    await settle(10);
    expect(starts).toHaveLength(4);
    const before = claims();
    // Held back for a whole window (widened by startSlackMs, 100 ms here): a claim every HELD_BACK_MS (25 ms) at
    // most, not a busy loop.
    for (let i = 0; i < 20; i++) {
      await clock.advance(50);
      await settle(3);
    }
    expect(starts).toHaveLength(4);
    for (let i = 0; i < 4; i++) {
      await clock.advance(50);
      await settle(3);
    }
    expect(starts).toHaveLength(8);
    expect(claims() - before).toBeLessThanOrEqual(1200 / 25 + 5);
    for (let i = 0; i < starts.length; i++) {
      // Any window of 1000 ms holds at most 4 starts.
      expect(starts.filter((t) => t >= starts[i]! && t < starts[i]! + 1000).length).toBeLessThanOrEqual(4);
    }
  });
});
