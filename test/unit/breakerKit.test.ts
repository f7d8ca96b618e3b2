import { afterEach, describe, expect, it } from 'vitest';
import { CircuitOpenError, createRuntime, KeelError, NonRetryableError, type Runtime } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';

let rt: Runtime | undefined;
afterEach(async () => {
  await rt?.stop();
  rt = undefined;
});

function setup() {
  const clock = new TestClock(0);
  rt = createRuntime({ clock });
  return { clock, rt };
}

/** A call that answers `value` after `ms` on the simulated clock. */
const later =
  <T>(clock: TestClock, ms: number, value: T) =>
  () =>
    new Promise<T>((resolve) => clock.setTimeout(() => resolve(value), ms));

describe('slow calls', () => {
  it('a provider that answers, but slowly, opens the circuit through slowCallRate', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', {
      slowCallMs: 50,
      slowCallRate: 0.5,
      windowSize: 4,
      minimumCalls: 4,
      callTimeoutMs: 1000,
    });
    for (let i = 0; i < 2; i++) expect(await sms.call(() => 'fast')).toBe('fast');
    for (let i = 0; i < 2; i++) {
      const slow = sms.call(later(clock, 60, 'late'));
      await clock.advance(60);
      // A slow answer is still the caller's answer.
      expect(await slow).toBe('late');
    }
    expect(sms.state).toBe('open');
    expect(sms.stats).toMatchObject({ successes: 4, slowCalls: 2, failures: 0 });
    expect(sms.actor.getSnapshot().context.window).toBe('SSWW');
  });

  it('counts slow calls without tripping when slowCallRate is not set, and fast ones are not slow', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', { slowCallMs: 50, failureRate: 0.5, minimumCalls: 1, windowSize: 2 });
    const slow = sms.call(later(clock, 50, 1));
    await clock.advance(50);
    await slow;
    const fast = sms.call(later(clock, 49, 2));
    await clock.advance(49);
    await fast;
    expect(sms.state).toBe('closed');
    expect(sms.stats).toMatchObject({ successes: 2, slowCalls: 1 });
  });

  it('a slow trial re-opens the circuit (the provider is still unwell)', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', { failureThreshold: 1, slowCallMs: 20, slowCallRate: 1, resetTimeoutMs: 100 });
    await sms.call(() => Promise.reject(new Error('down'))).catch(() => {});
    await clock.advance(100);
    expect(sms.state).toBe('halfOpen');
    const trial = sms.call(later(clock, 30, 'late'));
    await clock.advance(30);
    expect(await trial).toBe('late');
    expect(sms.state).toBe('open');
  });

  it('refuses slowCallRate without slowCallMs, and slowCallMs at or above callTimeoutMs', () => {
    setup();
    expect(() => rt!.breaker('a', { slowCallRate: 0.5 })).toThrow(/slowCallRate.*needs slowCallMs/);
    expect(() => rt!.breaker('b', { slowCallMs: 100, callTimeoutMs: 100 })).toThrow(/'slowCallMs' must be below/);
    expect(() => rt!.breaker('c', { slowCallRate: 2, slowCallMs: 10 })).toThrow(
      /'slowCallRate' must be a number in \(0, 1\], got 2/,
    );
  });
});

describe('bulkhead', () => {
  it('runs maxConcurrent, queues maxQueued, refuses the rest at once with BULKHEAD_FULL and retryAfterMs', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', { maxConcurrent: 2, maxQueued: 1, callTimeoutMs: 1000 });
    let started = 0;
    const release: Array<() => void> = [];
    const held = () =>
      new Promise<string>((resolve) => {
        started++;
        release.push(() => resolve('done'));
      });
    const a = sms.call(held);
    const b = sms.call(held);
    await clock.advance(100);
    const c = sms.call(held);
    const d = await sms.call(held).catch((e) => e);
    expect(started).toBe(2);
    expect(d).toBeInstanceOf(KeelError);
    expect(d.code).toBe('BULKHEAD_FULL');
    expect(d.message).toContain('2 calls running and 1 waiting');
    // The earliest running call times out at 1000: a slot frees within 900 ms.
    expect(d.retryAfterMs).toBe(900);
    expect(sms.stats).toMatchObject({ bulkheadRejections: 1, inFlight: 2, rejections: 0 });
    release.shift()?.();
    expect(await a).toBe('done');
    await settle();
    // The waiting call took the freed slot.
    expect(started).toBe(3);
    release.shift()?.();
    release.shift()?.();
    expect(await Promise.all([b, c])).toEqual(['done', 'done']);
    expect(sms.state).toBe('closed');
  });

  it('without a call timeout, BULKHEAD_FULL carries no retryAfterMs; refused calls never reach the machine', async () => {
    const { rt } = setup();
    const sms = rt.breaker('sms', { maxConcurrent: 1, callTimeoutMs: 0, failureThreshold: 1 });
    const pending = sms.call(() => new Promise(() => {}));
    const e = await sms.call(() => 1).catch((x) => x);
    expect(e.code).toBe('BULKHEAD_FULL');
    expect(e.retryAfterMs).toBeUndefined();
    expect(sms.state).toBe('closed');
    void pending;
  });

  it('refuses bad bulkhead options', () => {
    setup();
    expect(() => rt!.breaker('a', { maxConcurrent: 0 })).toThrow(
      /'maxConcurrent' must be an integer >= 1 or Infinity, got 0/,
    );
    expect(() => rt!.breaker('b', { maxQueued: 3 })).toThrow(/'maxQueued' needs maxConcurrent/);
    expect(() => rt!.breaker('c', { maxConcurrent: 1, maxQueued: -1 })).toThrow(/'maxQueued'.*got -1/);
  });
});

describe('call(fn, { retry, fallback })', () => {
  it('retries failures while closed, each retry counting as a call, and answers the first success', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', { failureThreshold: 10 });
    let n = 0;
    const flaky = async () => {
      if (++n < 3) throw new Error(`fail ${n}`);
      return 'sent';
    };
    const result = sms.call(flaky, { retry: { initialDelayMs: 10, jitter: false, maxAttempts: 5 } });
    await settle();
    await clock.advance(10);
    await clock.advance(20);
    expect(await result).toBe('sent');
    expect(n).toBe(3);
    expect(sms.stats).toMatchObject({ calls: 3, failures: 2, successes: 1 });
  });

  it('stops after maxAttempts and hands the last error to the fallback', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', { failureThreshold: 10 });
    let n = 0;
    const result = sms.call(
      async () => {
        throw new Error(`fail ${++n}`);
      },
      {
        retry: { initialDelayMs: 5, jitter: false, maxAttempts: 2 },
        fallback: (e) => `fallback after ${(e as Error).message}`,
      },
    );
    await settle();
    await clock.advance(5);
    expect(await result).toBe('fallback after fail 2');
    expect(sms.stats.calls).toBe(2);
  });

  it('never calls while open: waits retryAfterMs when it is within maxDelayMs', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', { failureThreshold: 1, resetTimeoutMs: 50 });
    let n = 0;
    const result = sms.call(
      async () => {
        if (++n === 1) throw new Error('down');
        return 'up';
      },
      { retry: { initialDelayMs: 1, maxDelayMs: 100, jitter: false, maxAttempts: 3 } },
    );
    await settle();
    expect(sms.state).toBe('open');
    await clock.advance(49);
    expect(n).toBe(1);
    await clock.advance(1);
    await settle();
    expect(await result).toBe('up');
    expect(sms.stats).toMatchObject({ calls: 2, rejections: 0, state: 'closed' });
  });

  it('fails fast on a refusal longer than maxDelayMs, and the fallback answers it', async () => {
    const { rt } = setup();
    const sms = rt.breaker('sms', { failureThreshold: 1, resetTimeoutMs: 60_000 });
    await sms.call(() => Promise.reject(new Error('down'))).catch(() => {});
    let ran = false;
    const refused = await sms
      .call(
        () => {
          ran = true;
        },
        { retry: { maxDelayMs: 1000 } },
      )
      .catch((e) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    const answered = await sms.call(() => 'never', {
      fallback: (e) => (e instanceof CircuitOpenError ? 'queued for later' : 'x'),
    });
    expect(answered).toBe('queued for later');
    expect(ran).toBe(false);
  });

  it('does not retry errors that are not failures (isFailure false, NonRetryableError)', async () => {
    const { rt } = setup();
    class BadRequest extends Error {}
    const sms = rt.breaker('sms', { isFailure: (e) => !(e instanceof BadRequest) });
    let n = 0;
    await expect(
      sms.call(
        async () => {
          n++;
          throw new BadRequest('400');
        },
        { retry: { maxAttempts: 5 } },
      ),
    ).rejects.toThrow('400');
    await expect(
      sms.call(
        async () => {
          n++;
          throw new NonRetryableError('no');
        },
        { retry: { maxAttempts: 5 } },
      ),
    ).rejects.toThrow('no');
    expect(n).toBe(2);
  });

  it('refuses unknown call options and bad retry fields with INVALID_OPTIONS', async () => {
    const { rt } = setup();
    const sms = rt.breaker('sms');
    await expect(sms.call(() => 1, { retries: 3 } as never)).rejects.toThrow(/'retries' is not a call option/);
    await expect(sms.call(() => 1, { retry: { maxAttempts: 0 } })).rejects.toThrow(/'retry.maxAttempts'/);
    await expect(sms.call(() => 1, { fallback: 'x' as never })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });
});

describe('dispose()', () => {
  it('stops the actor, frees the timers, refuses later calls and lets the name be used again', async () => {
    const { clock, rt } = setup();
    const sms = rt.breaker('sms', { callTimeoutMs: 100 });
    await sms.call(() => 'ok');
    await clock.advance(1);
    sms.dispose();
    expect(sms.actor.getSnapshot().status).toBe('stopped');
    expect(clock.pending).toBe(0);
    await expect(sms.call(() => 'x')).rejects.toThrow(/disposed/);
    const again = rt.breaker('sms', { callTimeoutMs: 5 });
    expect(again).not.toBe(sms);
    expect(rt.system.system.get('breaker.sms')).toBe(again.actor);
    expect(await again.call(() => 'fresh')).toBe('fresh');
    sms.dispose();
    expect(rt.breaker('sms')).toBe(again);
  });
});

describe('scope', () => {
  it("refuses scope 'fleet' on a store that cannot share it, and an unknown scope", () => {
    setup();
    expect(() => rt!.breaker('sms', { scope: 'fleet' })).toThrow(
      /'scope' 'fleet' needs a store shared by processes \(postgresStore\); this runtime's store is memory/,
    );
    expect(() => rt!.breaker('sms', { scope: 'world' as never })).toThrow(
      /'scope' must be 'process' or 'fleet', got 'world'/,
    );
  });
});
