import { afterEach, describe, expect, it } from 'vitest';
import { backoffMs, defaultRetry } from '../../src/core/retry.js';
import { createRuntime, KeelError, memoryStore, NonRetryableError, type Runtime } from '../../src/index.js';
import type { Task } from '../../src/runtime/queues.js';
import type { Store } from '../../src/stores/store.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { type Deferred, deferred } from '../fixtures/deferred.js';
import { Gauge } from '../fixtures/gauge.js';

const runtimes: Runtime[] = [];
function setupRt(store: Store = memoryStore(), start = 0) {
  const clock = new TestClock(start);
  const rt = createRuntime({ clock, store, onError: () => {} });
  runtimes.push(rt);
  return { rt, clock, store };
}
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop().catch(() => {});
});

/** An object JSON cannot print. */
function circular(): object {
  const o: Record<string, unknown> = {};
  o.self = o;
  return o;
}

describe('backoff', () => {
  const policy = { ...defaultRetry, jitter: false, initialDelayMs: 100, multiplier: 2, maxDelayMs: 1000 };
  it('grows exponentially from initialDelayMs and stops at maxDelayMs', () => {
    expect([1, 2, 3, 4, 5, 6, 50, 5000].map((a) => backoffMs(policy, a))).toEqual([
      100, 200, 400, 800, 1000, 1000, 1000, 1000,
    ]);
  });
  it('an initialDelayMs of 0 stays 0 however many attempts (no NaN once the growth overflows)', () => {
    const zero = { ...policy, initialDelayMs: 0 };
    expect([1, 2, 1100, 5000].map((a) => backoffMs(zero, a))).toEqual([0, 0, 0, 0]);
  });
  it('full jitter draws uniformly from 0 to the cap', () => {
    const j = { ...policy, jitter: true };
    expect(backoffMs(j, 3, () => 0)).toBe(0);
    expect(backoffMs(j, 3, () => 0.999999)).toBe(400);
    expect(backoffMs(j, 3, () => 0.5)).toBe(200);
    for (let i = 0; i < 200; i++) {
      const d = backoffMs(j, 10);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});

describe('rt.queue options', () => {
  it.each([
    [{ handler: 1 }, 'handler'],
    [{ handler: async () => {}, concurrency: 0 }, 'concurrency'],
    [{ handler: async () => {}, concurrency: 1.5 }, 'concurrency'],
    [{ handler: async () => {}, leaseMs: 0 }, 'leaseMs'],
    [{ handler: async () => {}, leaseMs: Number.POSITIVE_INFINITY }, 'leaseMs'],
    [{ handler: async () => {}, retry: { maxAttempts: 0 } }, 'retry.maxAttempts'],
    [{ handler: async () => {}, retry: { multiplier: 0.5 } }, 'retry.multiplier'],
    [{ handler: async () => {}, retry: { initialDelayMs: -1 } }, 'retry.initialDelayMs'],
    [{ handler: async () => {}, retry: { jitter: 'yes' } }, 'retry.jitter'],
    [{ handler: async () => {}, breaker: '' }, 'breaker'],
    [{ handler: async () => {}, timeoutMs: -5 }, 'timeoutMs'],
    [{ handler: async () => {}, concurency: 2 }, 'concurency'],
    [{ handler: async () => {}, retry: { maxAttempt: 2 } }, 'retry.maxAttempt'],
  ])('refuses %o naming %s', (options, option) => {
    const { rt } = setupRt();
    let err: unknown;
    try {
      rt.queue('q', options as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeelError);
    expect((err as KeelError).code).toBe('INVALID_OPTIONS');
    expect((err as KeelError).message).toContain(`'${option}'`);
  });

  it('refuses a name that cannot be a topic token', () => {
    const { rt } = setupRt();
    for (const bad of ['', 'a..b', '.a', 'a*', 'x.>', 7]) {
      expect(() => rt.queue(bad as string, { handler: async () => {} })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining("'name'") }),
      );
    }
    expect(rt.queue('emails:send-v2.eu').name).toBe('emails:send-v2.eu');
  });

  it('refuses a store without the task methods', () => {
    const rt = createRuntime({ store: { kind: 'bare', open: async () => {}, close: async () => {} } as never });
    runtimes.push(rt);
    expect(() => rt.queue('q')).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining('bare') }),
    );
  });

  it('registers its actor in the system as queue.<name>', () => {
    const { rt } = setupRt();
    const q = rt.queue('q');
    expect(rt.system.system.get('queue.q')).toBe(q.actor);
  });

  it('returns the same queue for the same name; a second set of options is a DUPLICATE_NAME', () => {
    const { rt } = setupRt();
    const q = rt.queue('q', { handler: async () => {} });
    expect(rt.queue('q')).toBe(q);
    expect(() => rt.queue('q', { handler: async () => {} })).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_NAME' }),
    );
  });

  it('refuses bad enqueue options without writing', async () => {
    const { rt } = setupRt();
    const q = rt.queue('q');
    await rt.start();
    await expect(q.enqueue(1, { key: '' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(q.enqueue(1, { delayMs: -1 })).rejects.toThrow(/delayMs/);
    await expect(q.enqueue(1, { delayMs: Number.NaN })).rejects.toThrow(/delayMs/);
    expect((await q.stats()).pending).toBe(0);
  });

  it('calls after stop reject with RUNTIME_STOPPED', async () => {
    const { rt } = setupRt();
    const q = rt.queue('q');
    await rt.start();
    await rt.stop();
    await expect(q.enqueue(1)).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
    await expect(q.stats()).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
  });
});

describe('queue semantics', () => {
  it('retries with exponential backoff and does not run an attempt early', async () => {
    const { rt, clock } = setupRt();
    const runs: number[] = [];
    const q = rt.queue('q', {
      handler: async (t) => {
        runs.push(clock.now());
        if (t.attempt < 4) throw new Error(`fail ${t.attempt}`);
      },
      retry: { initialDelayMs: 100, multiplier: 3, jitter: false },
    });
    await rt.start();
    const retrying: unknown[] = [];
    rt.bus.subscribe('task.q.retrying', (p) => retrying.push(p));
    await q.enqueue({ a: 1 }, { key: 'k' });
    await settle();
    expect(runs).toEqual([0]);
    await clock.advance(99);
    expect(runs).toEqual([0]);
    expect(await q.stats()).toMatchObject({ retrying: 1, pending: 0 });
    await clock.advance(1);
    await clock.advance(300 + 900);
    expect(runs).toEqual([0, 100, 400, 1300]);
    expect(retrying[0]).toMatchObject({
      queue: 'q',
      attempt: 1,
      key: 'k',
      payload: { a: 1 },
      error: 'Error: fail 1',
      runAt: 100,
    });
    expect(await q.stats()).toEqual({ pending: 0, active: 0, retrying: 0, succeeded: 1, dead: 0, cancelled: 0 });
  });

  it('retries without limit by default', async () => {
    const { rt, clock } = setupRt();
    let n = 0;
    const q = rt.queue('q', {
      handler: async () => {
        if (++n < 30) throw new Error('again');
      },
      retry: { initialDelayMs: 1, maxDelayMs: 5 },
    });
    await rt.start();
    await q.enqueue(1);
    const drained = q.drain();
    for (let i = 0; i < 40; i++) await clock.advance(5);
    await drained;
    expect(n).toBe(30);
    expect((await q.stats()).dead).toBe(0);
  });

  it('delays a task by delayMs', async () => {
    const { rt, clock } = setupRt();
    const runs: number[] = [];
    const q = rt.queue('q', { handler: async () => void runs.push(clock.now()) });
    await rt.start();
    await q.enqueue(1, { delayMs: 500 });
    await q.enqueue(2);
    await clock.advance(499);
    expect(runs).toEqual([0]);
    await clock.advance(1);
    expect(runs).toEqual([0, 500]);
  });

  it('dedups by key while the task is live, and accepts the key again after it finished', async () => {
    const { rt } = setupRt();
    const gate = deferred();
    const seen: unknown[] = [];
    const q = rt.queue('q', {
      handler: async (t) => {
        seen.push(t.payload);
        await gate.promise;
      },
    });
    await rt.start();
    const a = await q.enqueue({ v: 1 }, { key: 'user-1' });
    const b = await q.enqueue({ v: 2 }, { key: 'user-1' });
    expect(b).toEqual({ id: a.id, deduplicated: true });
    await settle();
    expect(await q.stats()).toMatchObject({ active: 1, pending: 0 });
    expect((await q.enqueue({ v: 3 }, { key: 'user-1' })).deduplicated).toBe(true);
    gate.resolve();
    await q.drain();
    const c = await q.enqueue({ v: 4 }, { key: 'user-1' });
    expect(c.deduplicated).toBe(false);
    await q.drain();
    expect(seen).toEqual([{ v: 1 }, { v: 4 }]);
  });

  it('a NonRetryableError dead-letters at once; redrive runs it again with attempts reset', async () => {
    const { rt } = setupRt();
    let fixed = false;
    const attempts: number[] = [];
    const q = rt.queue('q', {
      handler: async (t) => {
        attempts.push(t.attempt);
        if (!fixed) throw new NonRetryableError('bad address');
      },
    });
    const dead: unknown[] = [];
    rt.bus.subscribe('task.q.dead', (p) => dead.push(p));
    await rt.start();
    const { id } = await q.enqueue({ to: 'x' });
    await q.drain();
    expect(await q.dead()).toEqual([
      expect.objectContaining({ id, payload: { to: 'x' }, attempt: 1, error: 'NonRetryableError: bad address' }),
    ]);
    expect(dead).toHaveLength(1);
    fixed = true;
    expect(await q.redrive(id)).toBe(true);
    await q.drain();
    expect(attempts).toEqual([1, 1]);
    expect(await q.dead()).toEqual([]);
    expect(await q.stats()).toMatchObject({ succeeded: 1, dead: 0 });
    await expect(q.redrive(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('runs at most `concurrency` handlers at once, and uses all of them', async () => {
    const { rt } = setupRt();
    const inFlight = new Gauge();
    const gates: Deferred[] = [];
    const q = rt.queue('q', {
      concurrency: 3,
      handler: async () => {
        inFlight.enter();
        const g = deferred();
        gates.push(g);
        await g.promise;
        inFlight.leave();
      },
    });
    await rt.start();
    for (let i = 0; i < 10; i++) await q.enqueue(i);
    await settle();
    expect(inFlight.now).toBe(3);
    expect(await q.stats()).toMatchObject({ active: 10 - (await q.stats()).pending });
    const drained = q.drain();
    while (gates.length > 0 || inFlight.now > 0) {
      gates.shift()?.resolve();
      await settle();
    }
    await drained;
    expect(inFlight.most).toBe(3);
    expect((await q.stats()).succeeded).toBe(10);
  });

  it('renews the lease while a handler runs longer than leaseMs: delivered once', async () => {
    const { rt, clock } = setupRt();
    let runs = 0;
    let aborted = false;
    const q = rt.queue('q', {
      leaseMs: 100,
      handler: async (t) => {
        runs++;
        t.signal.addEventListener('abort', () => (aborted = true));
        await new Promise((r) => clock.setTimeout(r, 1000));
      },
    });
    await rt.start();
    await q.enqueue(1);
    await clock.advance(2000);
    expect(runs).toBe(1);
    expect(aborted).toBe(false);
    expect((await q.stats()).succeeded).toBe(1);
  });

  it('aborts task.signal when the lease is lost; the stale result is ignored and the task runs again', async () => {
    const { rt, clock, store } = setupRt();
    const signals: AbortSignal[] = [];
    const first = deferred();
    const succeeded: unknown[] = [];
    const q = rt.queue('q', {
      leaseMs: 300,
      handler: async (t) => {
        signals.push(t.signal);
        if (signals.length === 1) await first.promise;
      },
    });
    rt.bus.subscribe('task.q.succeeded', (p) => succeeded.push(p));
    await rt.start();
    const { id } = await q.enqueue({ n: 1 });
    await settle();
    // Another process's reaper saw the lease run out (this one was frozen).
    expect(await store.expireLeases('q', 300, Number.POSITIVE_INFINITY)).toEqual([{ id, state: 'pending' }]);
    await clock.advance(100);
    expect(signals[0]!.aborted).toBe(true);
    expect((signals[0]!.reason as KeelError).code).toBe('LEASE_LOST');
    // Claimed again once due (at 300, where the reaper put it), but the first run ignores its signal: the second
    // waits for it up to leaseMs.
    await clock.advance(250);
    expect(await q.stats()).toMatchObject({ active: 1 });
    expect(signals).toHaveLength(1);
    await clock.advance(1000);
    expect(signals).toHaveLength(2);
    first.resolve();
    await settle();
    expect(succeeded).toEqual([expect.objectContaining({ id, attempt: 2 })]);
    expect(await q.stats()).toMatchObject({ succeeded: 1, active: 0, pending: 0 });
  });

  it('hands out again a task whose worker vanished (lease ran out)', async () => {
    const store = memoryStore();
    const a = setupRt(store);
    const qa = a.rt.queue('q', { leaseMs: 500, handler: () => new Promise(() => {}) });
    await a.rt.start();
    const { id } = await qa.enqueue({ n: 1 });
    await settle();
    expect((await qa.get(id))!.state).toBe('active');
    // Runtime A is frozen from here on: its clock never moves, its renewals never come.
    const b = setupRt(store, 501);
    const seen: Task[] = [];
    const qb = b.rt.queue('q', { leaseMs: 500, handler: async (t) => void seen.push(t) });
    await b.rt.start();
    await qb.drain();
    expect(seen.map((t) => [t.id, t.attempt])).toEqual([[id, 2]]);
    const stopping = a.rt.stop();
    await a.clock.advance(10_000);
    await stopping;
  });

  it('a handler that never settles times out after timeoutMs, its signal aborts, and it is retried', async () => {
    const { rt, clock } = setupRt();
    const signals: AbortSignal[] = [];
    const q = rt.queue('q', {
      timeoutMs: 50,
      retry: { initialDelayMs: 10, jitter: false, maxAttempts: 2 },
      handler: (t) => {
        signals.push(t.signal);
        return new Promise(() => {});
      },
    });
    await rt.start();
    await q.enqueue(1);
    await clock.advance(200);
    expect(signals).toHaveLength(2);
    expect((signals[0]!.reason as KeelError).code).toBe('TASK_TIMEOUT');
    const [dead] = await q.dead();
    expect(dead!.error).toMatch(/TaskTimeoutError: .*did not settle within 50 ms/);
  });

  it.each([
    ['a string', 'plain string', 'thrown string: plain string'],
    ['undefined', undefined, 'thrown undefined: undefined'],
    ['null', null, 'thrown object: null'],
    ['an object', { code: 42 }, 'thrown object: {"code":42}'],
    ['a number', 7, 'thrown number: 7'],
    ['a bigint', 7n, 'thrown bigint: 7n'],
    ['a circular object', circular(), 'thrown object (not printable)'],
  ])('a handler that throws %s is retried and recorded', async (_what, thrown, recorded) => {
    const { rt } = setupRt();
    const q = rt.queue('q', {
      retry: { maxAttempts: 1 },
      handler: () => {
        throw thrown;
      },
    });
    await rt.start();
    await q.enqueue(1);
    await q.drain();
    expect((await q.dead())[0]!.error).toBe(recorded);
  });

  it('a stored payload that is not JSON dead-letters at once: retrying cannot help', async () => {
    const { rt, store } = setupRt();
    let runs = 0;
    const q = rt.queue('q', { paused: true, handler: async () => void runs++ });
    await rt.start();
    // Written by someone else: enqueue itself refuses what JSON cannot carry.
    const [stored] = await store.enqueue('q', [{ payload: '{not json', runAt: 0 }], 0);
    q.resume();
    await settle();
    expect(runs).toBe(0);
    expect(await q.get(stored!.id)).toMatchObject({
      state: 'dead',
      attempt: 1,
      payload: '{not json',
      error: expect.stringContaining('the stored payload is not JSON'),
    });
  });

  it('dead() lists a task whose stored payload is not JSON, with the stored text as its payload', async () => {
    const { rt, store } = setupRt();
    const q = rt.queue('q', { paused: true, handler: async () => {} });
    await rt.start();
    const [stored] = await store.enqueue('q', [{ payload: '{not json', runAt: 0 }], 0);
    q.resume();
    await settle();
    expect(await q.dead()).toMatchObject([{ id: stored!.id, payload: '{not json', attempt: 1 }]);
  });

  it('a handler that throws synchronously counts like a rejection', async () => {
    const { rt } = setupRt();
    const q = rt.queue('q', {
      retry: { maxAttempts: 1 },
      handler: () => {
        throw new TypeError('sync');
      },
    });
    await rt.start();
    await q.enqueue(1);
    await q.drain();
    expect((await q.dead())[0]!.error).toBe('TypeError: sync');
  });

  it('pause stops new claims; resume picks up', async () => {
    const { rt } = setupRt();
    const seen: unknown[] = [];
    const q = rt.queue('q', { handler: async (t) => void seen.push(t.payload) });
    await rt.start();
    q.pause();
    await q.enqueue(1);
    await settle();
    expect(seen).toEqual([]);
    expect(q.actor.getSnapshot().value).toEqual({ running: 'paused' });
    q.resume();
    await q.drain();
    expect(seen).toEqual([1]);
  });

  it('publishes succeeded, retrying and dead with the task', async () => {
    const { rt, clock } = setupRt();
    const events: Array<[string, unknown]> = [];
    rt.bus.subscribe('task.q.*', (p, e) => events.push([e.type, p]));
    const q = rt.queue('q', {
      retry: { maxAttempts: 2, initialDelayMs: 10, jitter: false },
      handler: async (t) => {
        if (t.payload === 'bad') throw new Error('x');
      },
    });
    await rt.start();
    const ok = await q.enqueue('good');
    const bad = await q.enqueue('bad', { key: 'b' });
    await clock.advance(10);
    await q.drain();
    expect(events).toEqual(
      expect.arrayContaining([
        ['task.q.succeeded', { queue: 'q', id: ok.id, attempt: 1, payload: 'good' }],
        [
          'task.q.retrying',
          { queue: 'q', id: bad.id, attempt: 1, key: 'b', payload: 'bad', error: 'Error: x', runAt: 10 },
        ],
        ['task.q.dead', { queue: 'q', id: bad.id, attempt: 2, key: 'b', payload: 'bad', error: 'Error: x' }],
      ]),
    );
    expect(events).toHaveLength(3);
  });
});

describe('graceful stop', () => {
  it('lets an active handler finish within the grace period', async () => {
    const store = memoryStore();
    const { rt, clock } = setupRt(store);
    const q = rt.queue('q', {
      graceMs: 1000,
      handler: () => new Promise((r) => clock.setTimeout(r, 500)),
    });
    await rt.start();
    await q.enqueue(1);
    await settle();
    const stopped = rt.stop();
    await settle();
    expect(q.actor.getSnapshot().value).toBe('stopping');
    await clock.advance(500);
    await stopped;
    expect(await store.stats('q', clock.now())).toMatchObject({ succeeded: 1, active: 0, pending: 0 });
    expect(clock.pending).toBe(0);
  });

  it('aborts handlers after the grace period and puts their tasks back to pending, attempt not spent', async () => {
    const store = memoryStore();
    const { rt, clock } = setupRt(store);
    const signals: AbortSignal[] = [];
    const q = rt.queue('q', {
      concurrency: 2,
      graceMs: 100,
      handler: (t) => {
        signals.push(t.signal);
        return new Promise(() => {});
      },
    });
    await rt.start();
    for (let i = 0; i < 5; i++) await q.enqueue(i);
    await settle();
    expect(signals).toHaveLength(2);
    const stopped = rt.stop();
    await clock.advance(100);
    await stopped;
    expect(q.actor.getSnapshot().value).toBe('stopped');
    expect(signals.every((s) => s.aborted && (s.reason as KeelError).code === 'RUNTIME_STOPPED')).toBe(true);
    expect(await store.stats('q', clock.now())).toEqual({
      pending: 5,
      active: 0,
      retrying: 0,
      succeeded: 0,
      dead: 0,
      cancelled: 0,
    });
    // A fresh runtime runs every one of them as a first attempt.
    const next = setupRt(store, clock.now());
    const attempts: number[] = [];
    const q2 = next.rt.queue('q', { handler: async (t) => void attempts.push(t.attempt) });
    await next.rt.start();
    await q2.drain();
    expect(attempts).toEqual([1, 1, 1, 1, 1]);
    expect(clock.pending).toBe(0);
  });

  it('takes no new task once stop began', async () => {
    const { rt, clock } = setupRt();
    const seen: unknown[] = [];
    const gate = deferred();
    const q = rt.queue('q', {
      handler: async (t) => {
        seen.push(t.payload);
        await gate.promise;
      },
    });
    await rt.start();
    await q.enqueue(1);
    await q.enqueue(2);
    await settle();
    const stopped = rt.stop();
    gate.resolve();
    await clock.advance(20_000);
    await stopped;
    expect(seen).toEqual([1]);
  });
});
