import { afterEach, describe, expect, it } from 'vitest';
import { type Breaker, type BreakerOptions, CircuitOpenError, createRuntime, type Runtime } from '../../src/index.js';
import type { BreakerEvent } from '../../src/machines/breaker.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { deferred } from '../fixtures/deferred.js';

// The machine is the one source of truth of the mode (issue #11): whatever
// drives the actor, `call()` admits exactly what the machine admits.

class Ignored extends Error {}

let runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.map((rt) => rt.stop()));
  runtimes = [];
});

function setup(options: BreakerOptions = {}) {
  const clock = new TestClock();
  const rt = createRuntime({ clock });
  runtimes.push(rt);
  const sms = rt.breaker('sms', {
    failureThreshold: 1,
    resetTimeoutMs: 100,
    callTimeoutMs: 0,
    isFailure: (e) => !(e instanceof Ignored),
    ...options,
  });
  const send = (event: BreakerEvent) => sms.actor.send(event);
  return { clock, rt, sms, send };
}

/** Starts a call held open; `invoked` says whether the breaker ran it. */
function hold(sms: Breaker) {
  const d = deferred<string>();
  let invoked = false;
  let done = false;
  const result = sms
    .call(() => {
      invoked = true;
      return d.promise;
    })
    .then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    )
    .finally(() => {
      done = true;
    });
  return { ...d, result, invoked: () => invoked, done: () => done };
}

async function openThenHalfOpen(sms: Breaker, clock: TestClock): Promise<void> {
  await sms.call(() => Promise.reject(new Error('down'))).catch(() => {});
  expect(sms.state).toBe('open');
  await clock.advance(sms.actor.getSnapshot().context.openMs);
  expect(sms.state).toBe('halfOpen');
}

describe('events sent straight to the actor', () => {
  it('a trial slot freed by the machine is admitted at once', async () => {
    const { sms, clock, send } = setup();
    await openThenHalfOpen(sms, clock);
    const a = hold(sms);
    expect(a.invoked()).toBe(true);
    expect(hold(sms).invoked()).toBe(false);
    send({ type: 'trial.release' });
    expect(sms.actor.getSnapshot().context.trials).toBe(0);
    const b = hold(sms);
    expect(b.invoked()).toBe(true);
    expect(sms.actor.getSnapshot().context.trials).toBe(1);
  });

  it('a new halfOpen period reached behind the breaker’s back admits trials, and the old trial no longer counts', async () => {
    const { sms, clock, send } = setup();
    await openThenHalfOpen(sms, clock);
    const old = hold(sms);
    expect(old.invoked()).toBe(true);
    send({ type: 'reset' });
    send({ type: 'call.failure', successesBefore: 0 });
    await clock.advance(100);
    expect(sms.state).toBe('halfOpen');
    expect(sms.actor.getSnapshot().context.trials).toBe(0);
    expect(sms.retryAfterMs).toBe(0);
    const fresh = hold(sms);
    expect(fresh.invoked()).toBe(true);
    // The old trial's success belongs to the earlier period: it must not close the circuit.
    old.resolve('late');
    expect(await old.result).toEqual({ ok: true, v: 'late' });
    expect(sms.state).toBe('halfOpen');
    expect(sms.actor.getSnapshot().context).toMatchObject({ trials: 1, successes: 0 });
    fresh.resolve('fine');
    await fresh.result;
    expect(sms.state).toBe('closed');
  });

  it('isolate and reset sent to the actor refuse and admit at once', async () => {
    const { sms, send } = setup();
    send({ type: 'isolate' });
    const refused = await sms.call(() => 'no').catch((e) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused.state).toBe('isolated');
    send({ type: 'reset' });
    expect(await sms.call(() => 'yes')).toBe('yes');
  });

  it('a reset sent to the actor in closed makes the calls in flight stop counting', async () => {
    const { sms, send } = setup({ failureThreshold: 2 });
    const slow = hold(sms);
    send({ type: 'reset' });
    slow.reject(new Error('late'));
    await slow.result;
    expect(sms.actor.getSnapshot().context.failures).toBe(0);
    // The successes before a reset do not travel with the next failure either.
    await sms.call(() => 'ok');
    const pending = hold(sms);
    send({ type: 'reset' });
    await sms.call(() => Promise.reject(new Error('down'))).catch(() => {});
    expect(sms.actor.getSnapshot().context.failures).toBe(1);
    pending.resolve('x');
    await pending.result;
  });

  it('an open period entered by an event sent to the actor hints the whole period', async () => {
    const { sms, clock, send } = setup({ resetTimeoutMs: 300 });
    await clock.advance(50);
    send({ type: 'call.failure', successesBefore: 0 });
    expect(sms.state).toBe('open');
    expect(sms.retryAfterMs).toBe(300);
    const refused = await sms.call(() => 'no').catch((e) => e);
    expect(refused.retryAfterMs).toBe(300);
  });
});

describe('while the actor is mid-transition', () => {
  it('two halfOpened handlers asking for the one trial slot: the machine admits exactly one', async () => {
    const { rt, sms, clock } = setup();
    await sms.call(() => Promise.reject(new Error('down'))).catch(() => {});
    const outcomes: string[] = [];
    const attempt = () =>
      sms
        .call(() => new Promise(() => {}))
        .catch((e) => outcomes.push(e instanceof CircuitOpenError ? 'refused' : 'other'));
    let invoked = 0;
    for (let i = 0; i < 2; i++) {
      rt.bus.subscribe('breaker.sms.halfOpened', () => {
        void sms
          .call(() => {
            invoked++;
            return new Promise(() => {});
          })
          .catch((e) => outcomes.push(e instanceof CircuitOpenError ? 'refused' : 'other'));
      });
    }
    await clock.advance(100);
    await settle();
    expect(invoked).toBe(1);
    expect(outcomes).toEqual(['refused']);
    expect(sms.actor.getSnapshot().context.trials).toBe(1);
    await attempt();
    expect(outcomes).toEqual(['refused', 'refused']);
  });

  it('a trial that fails at once inside a closed handler still counts for its own period', async () => {
    const { rt, sms, clock } = setup({ failureThreshold: 2 });
    await sms.call(() => Promise.reject(new Error('down'))).catch(() => {});
    await openThenHalfOpen(sms, clock);
    rt.bus.subscribe('breaker.sms.closed', () => {
      void sms
        .call(() => {
          throw new Error('sync');
        })
        .catch(() => {});
    });
    await sms.call(() => 'ok');
    await settle();
    expect(sms.state).toBe('closed');
    expect(sms.actor.getSnapshot().context.failures).toBe(1);
  });
});

describe('admission always equals the machine’s trials against halfOpenMaxCalls', () => {
  // A deterministic walk through awkward moments: trials held, settled, timed out,
  // resets and isolations through the API and straight to the actor, clock jumps.
  // Without a timeout no deadline fires during a clock jump, so nothing on the effect side runs meanwhile.
  it.each([
    [1, 50],
    [2, 50],
    [3, 50],
    [4, 0],
    [5, 0],
    [6, 0],
  ])('walk %i, callTimeoutMs %i', async (seed, callTimeoutMs) => {
    const { sms, clock, send } = setup({ halfOpenMaxCalls: 2, callTimeoutMs, successThreshold: 2 });
    let state = seed * 7919;
    const next = (n: number) => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return Math.floor(state / 65536) % n; // the high bits: an LCG's low bits repeat quickly
    };
    interface Held {
      d: ReturnType<typeof hold>;
      trial: boolean;
      visit: number;
    }
    let held: Held[] = [];
    const live = () => held.filter((h) => h.trial && h.visit === sms.actor.getSnapshot().context.visit);
    let admittedTrials = 0;
    const modes: Record<string, number> = {};
    for (let step = 0; step < 400; step++) {
      const before = sms.actor.getSnapshot();
      modes[String(before.value)] = (modes[String(before.value)] ?? 0) + 1;
      const choice = next(10);
      if (choice < 4) {
        const expected = before.value === 'closed' || (before.value === 'halfOpen' && before.context.trials < 2);
        const d = hold(sms);
        expect(d.invoked(), `step ${step}: admission in ${String(before.value)}`).toBe(expected);
        const after = sms.actor.getSnapshot();
        if (before.value === 'halfOpen') {
          expect(after.context.trials).toBe(before.context.trials + (expected ? 1 : 0));
          if (expected) admittedTrials++;
        }
        if (expected) held.push({ d, trial: before.value === 'halfOpen', visit: before.context.visit });
      } else if (choice < 7 && held.length > 0) {
        const h = held.splice(next(held.length), 1)[0] as Held;
        const how = next(3);
        if (how === 0) h.d.resolve('ok');
        else if (how === 1) h.d.reject(new Error('down'));
        else h.d.reject(new Ignored('not counted'));
        await h.d.result;
      } else if (choice === 7) {
        await clock.advance(next(2) === 0 ? 100 : (clock.nextIn ?? 10));
        await settle(1);
      } else if (choice === 8) {
        const which = next(4);
        if (which === 0) sms.reset();
        else if (which === 1) sms.isolate();
        else if (which === 2) send({ type: 'reset' });
        else send({ type: 'call.failure', successesBefore: 0 });
      } else if (next(2) === 0) {
        await settle(1);
      } else {
        // A whole round behind the breaker's back: back to the same mode, in a new period.
        send({ type: 'reset' });
        send({ type: 'call.failure', successesBefore: 0 });
        await clock.advance(sms.actor.getSnapshot().context.openMs);
      }
      held = held.filter((h) => !h.d.done()); // timed out
      // What the machine counts as trials in flight is what the breaker has in flight for this period.
      const snap = sms.actor.getSnapshot();
      if (snap.value === 'halfOpen') expect(snap.context.trials, `step ${step}`).toBe(live().length);
    }
    // The walk did reach the awkward part.
    expect(modes.halfOpen).toBeGreaterThan(10);
    expect(admittedTrials).toBeGreaterThan(2);
    for (const h of held) h.d.resolve('end');
  });
});
