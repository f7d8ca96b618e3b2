import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import {
  type Breaker,
  type BreakerOptions,
  CallTimeoutError,
  CircuitOpenError,
  createRuntime,
  KeelError,
  type Runtime,
} from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { deferred } from '../fixtures/deferred.js';

const boom = () => Promise.reject(new Error('down'));
const ok = () => Promise.resolve('ok');

let runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.map((rt) => rt.stop()));
  runtimes = [];
});

function setupBreaker(options: BreakerOptions = {}, inspect?: (e: InspectionEvent) => void) {
  const clock = new TestClock();
  const rt = createRuntime({ clock, inspect });
  runtimes.push(rt);
  const topics: Array<{ type: string; payload: any }> = [];
  rt.bus.subscribe('breaker.>', (payload, event) => {
    topics.push({ type: event.type, payload });
  });
  const sms = rt.breaker('sms', { callTimeoutMs: 0, resetTimeoutMs: 1_000, ...options });
  return { clock, rt, sms, topics };
}

async function fail(b: Breaker, times = 1): Promise<void> {
  for (let i = 0; i < times; i++) await expect(b.call(boom)).rejects.toThrow('down');
}

describe('closed', () => {
  it('returns the value of the call and rethrows its errors unchanged', async () => {
    const { sms } = setupBreaker();
    expect(await sms.call(async () => 42)).toBe(42);
    expect(await sms.call(() => 'sync')).toBe('sync');
    const error = new TypeError('mine');
    await expect(sms.call(() => Promise.reject(error))).rejects.toBe(error);
    await expect(
      sms.call(() => {
        throw error;
      }),
    ).rejects.toBe(error);
    expect(sms.state).toBe('closed');
  });

  it('opens after failureThreshold consecutive failures, and a success in between starts the count again', async () => {
    const { sms, topics } = setupBreaker({ failureThreshold: 3 });
    await fail(sms, 2);
    await sms.call(ok);
    await fail(sms, 2);
    expect(sms.state).toBe('closed');
    await fail(sms);
    expect(sms.state).toBe('open');
    expect(topics.map((t) => t.type)).toEqual(['breaker.sms.opened']);
    expect(topics[0]?.payload).toMatchObject({ breaker: 'sms', state: 'open', failures: 3, retryAfterMs: 1_000 });
  });

  it('opens on failure rate over the last windowSize calls once minimumCalls were seen', async () => {
    const { sms, topics } = setupBreaker({ failureThreshold: 100, failureRate: 0.5, minimumCalls: 4, windowSize: 4 });
    await fail(sms); // F: 1 call, below minimumCalls
    await sms.call(ok);
    await fail(sms); // F S F: 3 calls
    expect(sms.state).toBe('closed');
    await sms.call(ok);
    await sms.call(ok); // window S F S S: 1/4
    await fail(sms); // window F S S F: 2/4 = 0.5
    expect(sms.state).toBe('open');
    expect(topics[0]?.payload).toMatchObject({ windowCalls: 4, windowFailures: 2 });
  });

  it('forgets outcomes that slid out of the window', async () => {
    const { sms } = setupBreaker({ failureThreshold: 100, failureRate: 0.5, minimumCalls: 4, windowSize: 4 });
    await fail(sms);
    for (let i = 0; i < 10; i++) await sms.call(ok);
    await fail(sms); // S S S F: 1/4
    expect(sms.state).toBe('closed');
  });

  it('a success in closed costs no XState event; a counted failure costs one', async () => {
    const events: string[] = [];
    const { sms } = setupBreaker({}, (e) => {
      if (e.type === '@xstate.event' && (e.actorRef as { id?: string }).id === 'breaker.sms') events.push(e.event.type);
    });
    const before = sms.actor.getSnapshot();
    for (let i = 0; i < 100; i++) await sms.call(ok);
    expect(sms.actor.getSnapshot()).toBe(before);
    expect(events.filter((t) => !t.startsWith('xstate.'))).toEqual([]);
    await fail(sms);
    expect(events.filter((t) => !t.startsWith('xstate.'))).toEqual(['call.failure']);
  });
});

describe('open', () => {
  it('refuses calls with a CircuitOpenError carrying breaker, retryAfterMs and code, without calling the service', async () => {
    const { sms, clock } = setupBreaker({ failureThreshold: 1 });
    await fail(sms);
    await clock.advance(300);
    let called = false;
    const error = await sms
      .call(() => {
        called = true;
        return 1;
      })
      .catch((e) => e);
    expect(called).toBe(false);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toBeInstanceOf(KeelError);
    expect(error).toMatchObject({ code: 'CIRCUIT_OPEN', breaker: 'sms', retryAfterMs: 700, state: 'open' });
    expect(sms.retryAfterMs).toBe(700);
  });

  it('refusals work with the usual assertions and error checks', async () => {
    const { sms } = setupBreaker({ failureThreshold: 1 });
    await fail(sms);
    await expect(sms.call(ok)).rejects.toThrow(CircuitOpenError);
    await expect(sms.call(ok)).rejects.toThrow(KeelError);
    await expect(sms.call(ok)).rejects.toThrow(/is open; retry after/);
    await expect(sms.call(ok)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', breaker: 'sms' });
    const e = await sms.call(ok).catch((x) => x);
    expect(e instanceof Error && e instanceof KeelError && e instanceof CircuitOpenError).toBe(true);
  });

  it('captures no stack per rejection unless captureStack is set', async () => {
    const cheap = setupBreaker({ failureThreshold: 1 });
    await fail(cheap.sms);
    const e1 = (await cheap.sms.call(ok).catch((e) => e)) as CircuitOpenError;
    expect(e1).toBeInstanceOf(Error);
    expect(e1.stack).not.toContain('    at ');
    expect(e1.message).toBe("circuit 'sms' is open; retry after 1000 ms");
    expect(e1.name).toBe('CircuitOpenError');
    expect(String(e1)).toBe("CircuitOpenError: circuit 'sms' is open; retry after 1000 ms");
    expect(inspect(e1)).toContain("CircuitOpenError: circuit 'sms' is open");
    expect(JSON.parse(JSON.stringify(e1))).toEqual({
      code: 'CIRCUIT_OPEN',
      breaker: 'sms',
      retryAfterMs: 1000,
      state: 'open',
    });

    const rt = createRuntime({ clock: new TestClock() });
    runtimes.push(rt);
    const traced = rt.breaker('traced', { failureThreshold: 1, captureStack: true, callTimeoutMs: 0 });
    await fail(traced);
    const e2 = (await traced.call(ok).catch((e) => e)) as CircuitOpenError;
    expect(e2).toBeInstanceOf(CircuitOpenError);
    expect(e2.stack).toContain('    at ');
    expect(e2).toMatchObject({ code: 'CIRCUIT_OPEN', breaker: 'traced', retryAfterMs: 30_000 });
  });

  it('goes halfOpen on time by itself, with no call arriving', async () => {
    const { sms, clock, topics } = setupBreaker({ failureThreshold: 1 });
    await fail(sms);
    await clock.advance(999);
    expect(sms.state).toBe('open');
    await clock.advance(1);
    expect(sms.state).toBe('halfOpen');
    expect(topics.map((t) => t.type)).toEqual(['breaker.sms.opened', 'breaker.sms.halfOpened']);
    expect(sms.retryAfterMs).toBe(0);
  });
});

describe('halfOpen', () => {
  it('admits halfOpenMaxCalls trials, refuses the others at once, closes after successThreshold successes', async () => {
    const { sms, clock, topics } = setupBreaker({ failureThreshold: 1, halfOpenMaxCalls: 2, successThreshold: 3 });
    await fail(sms);
    await clock.advance(1_000);
    const t1 = deferred<string>();
    const t2 = deferred<string>();
    const p1 = sms.call(() => t1.promise);
    const p2 = sms.call(() => t2.promise);
    const refused = await sms.call(ok).catch((e) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused.state).toBe('halfOpen');
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    // No timeout bounds a trial, so the hint is the base open period.
    expect(sms.retryAfterMs).toBe(1_000);
    t1.resolve('a');
    expect(await p1).toBe('a');
    expect(sms.state).toBe('halfOpen');
    expect(await sms.call(ok)).toBe('ok'); // the freed slot takes a new trial: 2 successes
    expect(sms.state).toBe('halfOpen');
    t2.resolve('b');
    expect(await p2).toBe('b');
    expect(sms.state).toBe('closed');
    expect(topics.at(-1)).toMatchObject({ type: 'breaker.sms.closed', payload: { successes: 3, retryAfterMs: 0 } });
  });

  it('re-opens on a failed trial, backing off up to maxResetTimeoutMs, and starts over after a close', async () => {
    const { sms, clock } = setupBreaker({
      failureThreshold: 1,
      resetTimeoutMs: 100,
      backoffMultiplier: 3,
      maxResetTimeoutMs: 500,
    });
    await fail(sms);
    const periods: number[] = [];
    for (let i = 0; i < 4; i++) {
      periods.push(sms.retryAfterMs);
      await clock.advance(clock.nextIn ?? 0);
      expect(sms.state).toBe('halfOpen');
      await fail(sms);
      expect(sms.state).toBe('open');
    }
    expect(periods).toEqual([100, 300, 500, 500]);
    await clock.advance(500);
    await sms.call(ok);
    expect(sms.state).toBe('closed');
    await fail(sms);
    expect(sms.retryAfterMs).toBe(100);
  });

  it('a trial that outlives its period does not drive the machine', async () => {
    const { sms, clock } = setupBreaker({ failureThreshold: 1, resetTimeoutMs: 100 });
    await fail(sms);
    await clock.advance(100);
    const slow = deferred<string>();
    const trial = sms.call(() => slow.promise);
    sms.reset();
    expect(sms.state).toBe('closed');
    slow.reject(new Error('late'));
    await expect(trial).rejects.toThrow('late');
    expect(sms.state).toBe('closed');
    expect(sms.actor.getSnapshot().context.failures).toBe(0);
  });

  it('a call made from a halfOpened handler (inside the transition) is admitted as a trial', async () => {
    const { rt, sms, clock } = setupBreaker({ failureThreshold: 1, resetTimeoutMs: 100 });
    await fail(sms);
    const results: unknown[] = [];
    rt.bus.subscribe('breaker.sms.halfOpened', () => {
      sms.call(ok).then(
        (v) => results.push(v),
        (e) => results.push(e),
      );
    });
    await clock.advance(100);
    await settle();
    expect(results).toEqual(['ok']);
    expect(sms.state).toBe('closed');
  });
});

describe('timeouts', () => {
  it('fails a slow call with CallTimeoutError, aborts its signal and counts it as a failure', async () => {
    const { sms, clock } = setupBreaker({ callTimeoutMs: 50, failureThreshold: 2 });
    let seen: AbortSignal | undefined;
    const p = sms.call((signal) => {
      seen = signal;
      return new Promise(() => {});
    });
    const outcome = p.catch((e) => e);
    await clock.advance(49);
    expect(seen?.aborted).toBe(false);
    await clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(CallTimeoutError);
    expect(error).toMatchObject({ code: 'CALL_TIMEOUT', breaker: 'sms' });
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(error);
    expect(sms.actor.getSnapshot().context.failures).toBe(1);
    expect(sms.stats).toMatchObject({ timeouts: 1, failures: 1, inFlight: 0 });
  });

  it('gives each call its own signal, and ignores the late outcome of a timed-out call', async () => {
    const { sms, clock } = setupBreaker({ callTimeoutMs: 50, failureThreshold: 5 });
    const signals: AbortSignal[] = [];
    const late = deferred<string>();
    const first = sms
      .call((s) => {
        signals.push(s);
        return late.promise;
      })
      .catch((e) => e);
    await clock.advance(30);
    const second = sms.call((s) => {
      signals.push(s);
      return Promise.resolve('fast');
    });
    expect(await second).toBe('fast');
    await clock.advance(20);
    expect(await first).toBeInstanceOf(CallTimeoutError);
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[1]?.aborted).toBe(false);
    late.resolve('too late');
    await settle();
    expect(sms.stats).toMatchObject({ successes: 1, timeouts: 1, failures: 1 });
  });

  it('times out a function that takes no signal too; it gets a shared signal that never aborts', async () => {
    const { sms, clock } = setupBreaker({ callTimeoutMs: 50 });
    let seen: AbortSignal | undefined;
    const outcome = sms
      .call((...args: unknown[]) => {
        seen = args[0] as AbortSignal;
        return new Promise(() => {});
      })
      .catch((e) => e);
    await clock.advance(50);
    expect(await outcome).toBeInstanceOf(CallTimeoutError);
    expect(seen).toBeInstanceOf(AbortSignal);
    expect(seen?.aborted).toBe(false);
  });

  it('times out every call of a burst on time with one timer', async () => {
    const { sms, clock } = setupBreaker({ callTimeoutMs: 100, failureThreshold: 1_000 });
    const outcomes: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20; i++) {
      outcomes.push(sms.call(() => new Promise(() => {})).catch((e) => e));
      await clock.advance(5);
    }
    // t = 100: only the first call (started at 0) is due
    expect(sms.stats.timeouts).toBe(1);
    expect(clock.pending).toBe(1);
    await clock.advance(5);
    expect(sms.stats.timeouts).toBe(2);
    await clock.advance(90);
    expect(sms.stats.timeouts).toBe(20);
    for (const o of outcomes) expect(await o).toBeInstanceOf(CallTimeoutError);
  });

  it('callTimeoutMs 0 never times out and arms no timer', async () => {
    const { sms, clock } = setupBreaker({ callTimeoutMs: 0 });
    const slow = deferred<number>();
    const p = sms.call(() => slow.promise);
    await clock.advance(1_000_000);
    expect(clock.pending).toBe(0);
    slow.resolve(7);
    expect(await p).toBe(7);
  });
});

describe('isFailure', () => {
  it('lets errors it rejects pass through without counting, in closed and in halfOpen', async () => {
    class NotFound extends Error {}
    const { sms, clock } = setupBreaker({ failureThreshold: 1, isFailure: (e) => !(e instanceof NotFound) });
    const nf = new NotFound('404');
    await expect(sms.call(() => Promise.reject(nf))).rejects.toBe(nf);
    expect(sms.state).toBe('closed');
    await fail(sms);
    await clock.advance(1_000);
    await expect(sms.call(() => Promise.reject(nf))).rejects.toBe(nf);
    expect(sms.state).toBe('halfOpen');
    expect(await sms.call(ok)).toBe('ok'); // the slot was released
    expect(sms.state).toBe('closed');
    expect(sms.stats).toMatchObject({ ignoredErrors: 2, failures: 1 });
  });

  it('counts the error as a failure and reports it when isFailure itself throws', async () => {
    const reported: string[] = [];
    const rt = createRuntime({ clock: new TestClock(), onError: (_e, detail) => reported.push(detail) });
    runtimes.push(rt);
    const sms = rt.breaker('sms', {
      failureThreshold: 1,
      callTimeoutMs: 0,
      isFailure: () => {
        throw new Error('classifier bug');
      },
    });
    await fail(sms);
    expect(sms.state).toBe('open');
    expect(sms.stats).toMatchObject({ failures: 1, ignoredErrors: 0 });
    expect(reported).toEqual(["breaker('sms'): isFailure threw; the error counts as a failure"]);
  });
});

describe('isolate and reset', () => {
  it('isolate() refuses everything until reset(), announces both, and reports retryAfterMs Infinity', async () => {
    const { sms, clock, topics } = setupBreaker();
    sms.isolate();
    expect(sms.state).toBe('isolated');
    await clock.advance(10_000_000);
    const e = await sms.call(ok).catch((x) => x);
    expect(e).toBeInstanceOf(CircuitOpenError);
    expect(e.retryAfterMs).toBe(Number.POSITIVE_INFINITY);
    expect(e.state).toBe('isolated');
    expect(sms.retryAfterMs).toBe(Number.POSITIVE_INFINITY);
    sms.reset();
    expect(sms.state).toBe('closed');
    expect(await sms.call(ok)).toBe('ok');
    expect(topics.map((t) => [t.type, t.payload.state])).toEqual([
      ['breaker.sms.opened', 'isolated'],
      ['breaker.sms.closed', 'closed'],
    ]);
  });

  it('reset() from open closes at once and cancels the open timer', async () => {
    const { sms, clock } = setupBreaker({ failureThreshold: 1 });
    await fail(sms);
    sms.reset();
    expect(sms.state).toBe('closed');
    await clock.advance(5_000);
    expect(sms.state).toBe('closed');
  });
});

describe('registry, inspection and lifecycle', () => {
  it('returns the same breaker for the same name, and refuses different settings', async () => {
    const { rt, sms } = setupBreaker();
    expect(rt.breaker('sms')).toBe(sms);
    expect(rt.breaker('sms', { callTimeoutMs: 0, resetTimeoutMs: 1_000 })).toBe(sms);
    expect(() => rt.breaker('sms', { failureThreshold: 9 })).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_NAME', message: expect.stringContaining('failureThreshold') }),
    );
    expect(rt.breaker('email')).not.toBe(sms);
  });

  it('runs its actor in the runtime system as breaker.<name>', () => {
    const seen: string[] = [];
    const { rt, sms } = setupBreaker({}, (e) => {
      if (e.type === '@xstate.actor') seen.push((e.actorRef as unknown as { id: string }).id);
    });
    expect(rt.system.system.get('breaker.sms')).toBe(sms.actor);
    expect(seen).toContain('breaker.sms');
  });

  it('keeps statistics', async () => {
    const { sms } = setupBreaker({ failureThreshold: 2 });
    await sms.call(ok);
    await fail(sms, 2);
    await sms.call(ok).catch(() => {});
    expect(sms.stats).toEqual({
      state: 'open',
      calls: 4,
      successes: 1,
      failures: 2,
      timeouts: 0,
      rejections: 1,
      ignoredErrors: 0,
      slowCalls: 0,
      bulkheadRejections: 0,
      inFlight: 0,
    });
  });

  it('releases its timers on rt.stop() and refuses later calls with RUNTIME_STOPPED', async () => {
    const { rt, sms, clock } = setupBreaker({ failureThreshold: 1, callTimeoutMs: 100 });
    await sms.call(ok);
    await expect(sms.call(boom)).rejects.toThrow('down');
    expect(sms.state).toBe('open');
    expect(clock.pending).toBeGreaterThan(0);
    await rt.stop();
    expect(clock.pending).toBe(0);
    await expect(sms.call(ok)).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
  });

  it('lets a call in flight at stop time finish or time out, then releases the timer', async () => {
    const { rt, sms, clock } = setupBreaker({ callTimeoutMs: 100 });
    const p = sms.call(() => new Promise(() => {})).catch((e) => e);
    await rt.stop();
    expect(clock.pending).toBe(1);
    await clock.advance(100);
    expect(await p).toBeInstanceOf(CallTimeoutError);
    expect(clock.pending).toBe(0);
  });

  it('works before rt.start()', async () => {
    const { rt, sms } = setupBreaker();
    expect(rt.state).toBe('idle');
    expect(await sms.call(ok)).toBe('ok');
  });

  it('refuses a call without a function', async () => {
    const { sms } = setupBreaker();
    await expect(sms.call(42 as never)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });
});
