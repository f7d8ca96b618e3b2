/**
 * The fleet breaker decides like one breaker (issue #18): three runtimes share
 * a fleet breaker (through an in-memory fleet store, `test/unit/breakerFleetFake.ts`)
 * and a single process-scope breaker, the reference, sees the same calls. The
 * documented delay is modelled exactly: a closed-state outcome reaches the
 * fleet's counts `fleetSyncMs` after it happened, so the reference hears of it
 * then too; a trial's outcome is told to the fleet at once, and to the
 * reference at once. With that, every call is admitted or refused alike and
 * every process is in the reference's mode after every step.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Breaker, type BreakerOptions, CircuitOpenError, createRuntime, type Runtime } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { FakeFleet } from '../unit/breakerFleetFake.js';

const S = 10; // fleetSyncMs

type Op = { op: 'call'; p: number; ok: boolean } | { op: 'advance'; steps: number };

const optionsArb = fc
  .record({
    failureThreshold: fc.integer({ min: 1, max: 4 }),
    failureRate: fc.option(fc.constantFrom(0.25, 0.5, 1), { nil: undefined }),
    windowSize: fc.integer({ min: 1, max: 5 }),
    minimumFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    resetSteps: fc.integer({ min: 1, max: 6 }),
    backoffMultiplier: fc.constantFrom(1, 2),
    halfOpenMaxCalls: fc.integer({ min: 1, max: 2 }),
    successThreshold: fc.integer({ min: 1, max: 2 }),
  })
  .map(
    (r): BreakerOptions => ({
      failureThreshold: r.failureThreshold,
      failureRate: r.failureRate,
      windowSize: r.windowSize,
      minimumCalls: Math.max(1, Math.ceil(r.minimumFraction * r.windowSize)),
      // Multiples of the sync delay: timers of the fleet and of the reference fire at the same instants.
      resetTimeoutMs: r.resetSteps * S,
      maxResetTimeoutMs: r.resetSteps * S * 4,
      backoffMultiplier: r.backoffMultiplier,
      halfOpenMaxCalls: r.halfOpenMaxCalls,
      successThreshold: r.successThreshold,
      callTimeoutMs: 0,
    }),
  );

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('call' as const), p: fc.integer({ min: 0, max: 2 }), ok: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), steps: fc.integer({ min: 1, max: 8 }) }) },
);

async function check(o: BreakerOptions, ops: Op[]): Promise<void> {
  const clock = new TestClock(0);
  const refClock = new TestClock(0);
  const fleet = new FakeFleet();
  const runtimes: Runtime[] = [];
  const refRt = createRuntime({ clock: refClock });
  try {
    const members: Breaker[] = [];
    for (let i = 0; i < 3; i++) {
      const rt = createRuntime({ clock, store: fleet.store() });
      runtimes.push(rt);
      members.push(rt.breaker('sms', { ...o, scope: 'fleet', fleetSyncMs: S }));
      await rt.start();
    }
    const ref = refRt.breaker('sms', o);
    await settle();
    for (const m of members) expect(m.stats.fleet).toBe('joined');
    const both = async (ms: number) => {
      await clock.advance(ms);
      await refClock.advance(ms);
      await settle();
    };

    for (const [i, op] of ops.entries()) {
      const where = `op ${i} ${JSON.stringify(op)}`;
      if (op.op === 'advance') {
        await both(op.steps * S);
      } else {
        const trial = ref.state === 'halfOpen';
        let refEnd!: (ok: boolean) => void;
        let refAdmitted = false;
        const refResult = ref
          .call(
            () =>
              new Promise((resolve, reject) => {
                refAdmitted = true;
                refEnd = (ok) => (ok ? resolve('ok') : reject(new Error('down')));
              }),
          )
          .catch((e) => e);
        let admitted = false;
        const result = members[op.p]!.call(async () => {
          admitted = true;
          if (!op.ok) throw new Error('down');
          return 'ok';
        }).catch((e) => e);
        await settle();
        expect(admitted, where).toBe(refAdmitted);
        if (!admitted) expect(await result, where).toBeInstanceOf(CircuitOpenError);
        if (!refAdmitted) expect(await refResult, where).toBeInstanceOf(CircuitOpenError);
        if (refAdmitted && trial) {
          refEnd(op.ok);
          await settle();
          await both(S);
        } else {
          await both(S);
          if (refAdmitted) refEnd(op.ok);
          await settle();
        }
      }
      for (const [p, m] of members.entries()) expect(m.state, `${where}: process ${p}`).toBe(ref.state);
    }
  } finally {
    await Promise.all(runtimes.map((rt) => rt.stop()));
    await refRt.stop();
  }
}

describe('a fleet breaker decides like a single reference breaker', () => {
  it('for random options and random calls from three runtimes, within the documented delay', async () => {
    await fc.assert(fc.asyncProperty(optionsArb, fc.array(opArb, { minLength: 1, maxLength: 50 }), check), {
      numRuns: 150,
    });
  });

  it('opens for the fleet on failures from different processes that no single process would count', async () => {
    const ops: Op[] = [
      { op: 'call', p: 0, ok: false },
      { op: 'call', p: 1, ok: false },
      { op: 'call', p: 2, ok: false },
      { op: 'call', p: 0, ok: true },
    ];
    await check({ failureThreshold: 3, resetTimeoutMs: 30, callTimeoutMs: 0 }, ops);
  });
});
