import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BreakerOptions, CallTimeoutError, CircuitOpenError, createRuntime } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';

type Outcome = 'success' | 'failure' | 'ignored';
type Op =
  | { op: 'call'; outcome: Outcome | 'timeout' }
  | { op: 'hold' }
  | { op: 'settle'; outcome: Outcome }
  | { op: 'advance'; ms: number }
  | { op: 'isolate' }
  | { op: 'reset' }
  | { op: 'turn' };

interface Options {
  failureThreshold: number;
  failureRate: number | undefined;
  minimumCalls: number;
  windowSize: number;
  callTimeoutMs: number;
  resetTimeoutMs: number;
  maxResetTimeoutMs: number;
  backoffMultiplier: number;
  halfOpenMaxCalls: number;
  successThreshold: number;
}

type Mode = 'closed' | 'open' | 'halfOpen' | 'isolated';
interface Held {
  period: number;
  trial: boolean;
  deadline: number;
}
/** What one call returned: admitted (and how it ended), or refused (and the retry hint). */
type Decision = { admitted: true } | { admitted: false; retryAfterMs: number };

/**
 * The reference: a plain, eager breaker written from the specification. It
 * counts every success immediately and keeps the whole window, unlike the
 * runtime, which sends the machine nothing for a success.
 */
class Reference {
  mode: Mode = 'closed';
  now = 0;
  consecutive = 0;
  window: boolean[] = [];
  openMs: number;
  openedAt = 0;
  trials = 0;
  successes = 0;
  period = 0;
  held: Held[] = [];
  stats = {
    calls: 0,
    successes: 0,
    failures: 0,
    timeouts: 0,
    rejections: 0,
    ignoredErrors: 0,
    slowCalls: 0,
    bulkheadRejections: 0,
  };

  constructor(readonly o: Options) {
    this.openMs = o.resetTimeoutMs;
  }

  private enter(mode: Mode): void {
    this.mode = mode;
    this.period++;
    this.trials = 0;
    this.successes = 0;
    if (mode === 'open') this.openedAt = this.now;
    if (mode === 'closed') {
      this.consecutive = 0;
      this.window = [];
      this.openMs = this.o.resetTimeoutMs;
    }
  }

  /** A call arrives: admitted or refused. */
  call(): Decision & { held?: Held } {
    this.stats.calls++;
    if (this.mode === 'closed') return { admitted: true, held: this.hold(false) };
    if (this.mode === 'halfOpen' && this.trials < this.o.halfOpenMaxCalls) {
      this.trials++;
      return { admitted: true, held: this.hold(true) };
    }
    this.stats.rejections++;
    return { admitted: false, retryAfterMs: this.retryAfterMs() };
  }

  private hold(trial: boolean): Held {
    return { period: this.period, trial, deadline: this.now + this.o.callTimeoutMs };
  }

  retryAfterMs(): number {
    if (this.mode === 'closed') return 0;
    if (this.mode === 'isolated') return Number.POSITIVE_INFINITY;
    if (this.mode === 'open') return Math.max(1, this.openedAt + this.openMs - this.now);
    if (this.trials < this.o.halfOpenMaxCalls) return 0;
    const deadlines = this.held.filter((h) => h.trial && h.period === this.period).map((h) => h.deadline);
    if (deadlines.length === 0) return 1;
    return Math.max(1, Math.min(this.o.resetTimeoutMs, Math.min(...deadlines) - this.now));
  }

  /** An admitted call ended. */
  end(h: Held, outcome: Outcome | 'timeout'): void {
    if (outcome === 'success') this.stats.successes++;
    else if (outcome === 'ignored') this.stats.ignoredErrors++;
    else this.stats.failures++;
    if (outcome === 'timeout') this.stats.timeouts++;
    if (h.period !== this.period) return;
    if (!h.trial) {
      if (outcome === 'ignored') return;
      const failed = outcome !== 'success';
      this.window.push(failed);
      if (this.window.length > this.o.windowSize) this.window.shift();
      this.consecutive = failed ? this.consecutive + 1 : 0;
      if (!failed) return;
      const f = this.window.filter(Boolean).length;
      const rateTrips =
        this.o.failureRate !== undefined &&
        this.window.length >= this.o.minimumCalls &&
        f / this.window.length >= this.o.failureRate;
      if (this.consecutive >= this.o.failureThreshold || rateTrips) this.enter('open');
      return;
    }
    this.trials--;
    if (outcome === 'ignored') return;
    if (outcome === 'success') {
      this.successes++;
      if (this.successes >= this.o.successThreshold) this.enter('closed');
      return;
    }
    this.openMs = Math.min(this.o.maxResetTimeoutMs, this.openMs * this.o.backoffMultiplier);
    this.enter('open');
  }

  /** Time passes (no call is in flight while it does). */
  advance(ms: number): void {
    const until = this.now + ms;
    if (this.mode === 'open' && this.openedAt + this.openMs <= until) {
      this.now = this.openedAt + this.openMs;
      this.enter('halfOpen');
    }
    this.now = until;
  }

  isolate(): void {
    if (this.mode !== 'isolated') this.enter('isolated');
  }

  reset(): void {
    this.enter('closed');
  }
}

const optionsArb: fc.Arbitrary<Options> = fc
  .record({
    failureThreshold: fc.integer({ min: 1, max: 4 }),
    failureRate: fc.option(fc.constantFrom(0.25, 0.5, 0.75, 1), { nil: undefined }),
    windowSize: fc.integer({ min: 1, max: 6 }),
    minimumFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    callTimeoutMs: fc.integer({ min: 10, max: 80 }),
    resetTimeoutMs: fc.integer({ min: 20, max: 150 }),
    backoffMultiplier: fc.constantFrom(1, 1.5, 2, 3),
    maxExtra: fc.integer({ min: 0, max: 300 }),
    halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
    successThreshold: fc.integer({ min: 1, max: 3 }),
  })
  .map((r) => ({
    failureThreshold: r.failureThreshold,
    failureRate: r.failureRate,
    windowSize: r.windowSize,
    minimumCalls: Math.max(1, Math.ceil(r.minimumFraction * r.windowSize)),
    callTimeoutMs: r.callTimeoutMs,
    resetTimeoutMs: r.resetTimeoutMs,
    maxResetTimeoutMs: r.resetTimeoutMs + r.maxExtra,
    backoffMultiplier: r.backoffMultiplier,
    halfOpenMaxCalls: r.halfOpenMaxCalls,
    successThreshold: r.successThreshold,
  }));

const outcomeArb = fc.constantFrom<Outcome>('success', 'success', 'failure', 'failure', 'ignored');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('call' as const),
      outcome: fc.oneof(outcomeArb, fc.constant('timeout' as const)),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ op: 'hold' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('settle' as const), outcome: outcomeArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'isolate' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reset' as const }) },
  { weight: 2, arbitrary: fc.constant({ op: 'turn' as const }) },
);

class Ignored extends Error {}

interface RealHeld {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  ref: Held;
}

/**
 * `turns`: the clock simulates event-loop turn ends, so deadlines are stamped
 * when a turn ends (op `turn`, or before time moves) instead of at each call.
 */
async function check(o: Options, turns: boolean, ops: Op[]): Promise<void> {
  const clock = new TestClock(0, { turns });
  const rt = createRuntime({ clock });
  try {
    const options: BreakerOptions = { ...o, isFailure: (e) => !(e instanceof Ignored) };
    const sms = rt.breaker('p', options);
    const ref = new Reference(o);
    const held: RealHeld[] = [];

    const end = async (h: RealHeld, outcome: Outcome) => {
      if (outcome === 'success') h.resolve('ok');
      else h.reject(outcome === 'ignored' ? new Ignored('x') : new Error('x'));
      await settle();
      ref.end(h.ref, outcome);
    };
    const settleAll = async () => {
      while (held.length > 0) await end(held.shift() as RealHeld, 'success');
    };

    for (const [i, op] of ops.entries()) {
      const where = `op ${i} ${JSON.stringify(op)}`;
      switch (op.op) {
        case 'call':
        case 'hold': {
          if (op.op === 'call' && op.outcome === 'timeout') await settleAll();
          const expected = ref.call();
          let admitted = false;
          let control: RealHeld | undefined;
          const result = sms
            .call(
              () =>
                new Promise((resolve, reject) => {
                  admitted = true;
                  control = { resolve, reject, ref: expected.held as Held };
                }),
            )
            .then(
              () => 'resolved',
              (e) => e,
            );
          expect(admitted, where).toBe(expected.admitted);
          if (!expected.admitted) {
            const e = await result;
            expect(e, where).toBeInstanceOf(CircuitOpenError);
            expect(e.retryAfterMs, where).toBe(expected.retryAfterMs);
            if (op.op === 'call' && op.outcome === 'timeout') {
              await clock.advance(o.callTimeoutMs);
              ref.advance(o.callTimeoutMs);
            }
            break;
          }
          const c = control as RealHeld;
          if (op.op === 'hold') {
            ref.held.push(c.ref);
            held.push(c);
          } else if (op.outcome === 'timeout') {
            await clock.advance(o.callTimeoutMs);
            ref.now += o.callTimeoutMs;
            ref.end(c.ref, 'timeout');
            expect(await result, where).toBeInstanceOf(CallTimeoutError);
          } else {
            await end(c, op.outcome);
          }
          break;
        }
        case 'settle': {
          const h = held.shift();
          if (!h) break;
          ref.held.shift();
          await end(h, op.outcome);
          break;
        }
        case 'advance':
          await settleAll();
          ref.held = [];
          await clock.advance(op.ms);
          ref.advance(op.ms);
          break;
        case 'isolate':
          sms.isolate();
          ref.isolate();
          break;
        case 'reset':
          sms.reset();
          ref.reset();
          break;
        case 'turn':
          clock.endTurn();
          break;
      }
      expect(sms.state, where).toBe(ref.mode);
    }
    await settleAll();
    const { state: _s, inFlight, ...stats } = sms.stats;
    expect(stats).toEqual(ref.stats);
    expect(inFlight).toBe(0);
  } finally {
    await rt.stop();
  }
}

describe('breaker decisions equal a reference model', () => {
  it('for random options and random sequences of calls, outcomes, timeouts and clock advances', async () => {
    await fc.assert(
      fc.asyncProperty(optionsArb, fc.boolean(), fc.array(opArb, { minLength: 1, maxLength: 60 }), check),
      { numRuns: 500 },
    );
  });

  it('opens and half-opens exactly like the reference in a long failing streak', async () => {
    const o: Options = {
      failureThreshold: 2,
      failureRate: undefined,
      minimumCalls: 1,
      windowSize: 1,
      callTimeoutMs: 30,
      resetTimeoutMs: 40,
      maxResetTimeoutMs: 100,
      backoffMultiplier: 2,
      halfOpenMaxCalls: 1,
      successThreshold: 1,
    };
    const ops: Op[] = [];
    for (let i = 0; i < 10; i++) ops.push({ op: 'call', outcome: 'timeout' }, { op: 'advance', ms: 35 });
    await check(o, false, ops);
    await check(o, true, ops);
  });
});
