import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AnyMachineSnapshot } from 'xstate';
import { CallTimeoutError, CircuitOpenError, createRuntime, type Runtime } from '../../src/index.js';
import {
  type BreakerContext,
  type BreakerEvent,
  type BreakerSettings,
  breakerMachine,
} from '../../src/machines/breaker.js';
import {
  type Driver,
  eventKind,
  type ModelStep,
  planPaths,
  replayPath,
  settle,
  TestClock,
} from '../../src/testing/index.js';

// Small thresholds keep every context field bounded, so the graph is finite.
const settings: BreakerSettings = {
  name: 'sms',
  failureThreshold: 2,
  failureRate: 0.5,
  slowCallRate: 0.5,
  minimumCalls: 2,
  windowSize: 2,
  resetTimeoutMs: 100,
  maxResetTimeoutMs: 200,
  backoffMultiplier: 2,
  halfOpenMaxCalls: 2,
  successThreshold: 2,
};

const always: BreakerEvent[] = [
  { type: 'call.failure', successesBefore: 0 },
  { type: 'call.failure', successesBefore: 1 },
  { type: 'call.slow', successesBefore: 0 },
  { type: 'call.slow', successesBefore: 1 },
  { type: 'trial.start' },
  { type: 'isolate' },
  { type: 'reset' },
  // What the fleet link sends (src/actors/breaker/fleet.ts); the driver sends them as it would.
  { type: 'fleet.opened', openMs: 150 },
  { type: 'fleet.closed' },
  { type: 'fleet.lost' },
  { type: 'fleet.joined' },
];
const slowCallMs = 20;
const outcomes: BreakerEvent[] = [{ type: 'trial.success' }, { type: 'trial.failure' }, { type: 'trial.release' }];
const openTimer = { type: 'xstate.after.openDelay.breaker.open' };

// `visit` only grows: it stays out of the state key, so the graph stays finite.
// The closed-state counts are kept, unused, until the next close clears them: outside closed they
// stay out of the key too (else every open, halfOpen and isolated state repeats per window).
const withoutVisit = (s: AnyMachineSnapshot) => {
  const { visit: _visit, failures, window, ...context } = s.context as BreakerContext;
  return JSON.stringify({ value: s.value, context, ...(s.value === 'closed' ? { failures, window } : {}) });
};

const plan = planPaths(breakerMachine, {
  input: settings,
  serializeState: withoutVisit,
  // Trial outcomes only exist while a trial is in flight: the driver cannot produce them otherwise.
  events: (s) => [...always, ...((s.context as BreakerContext).trials > 0 ? outcomes : []), openTimer] as never,
});

afterAll(() => {
  console.log(plan.coverage.format('breaker'));
});

class Ignored extends Error {}

let runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.map((rt) => rt.stop()));
  runtimes = [];
});

interface Trial {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  deadline: number;
}

const topicOf: Record<string, string> = {
  open: 'breaker.sms.opened',
  isolated: 'breaker.sms.opened',
  halfOpen: 'breaker.sms.halfOpened',
  closed: 'breaker.sms.closed',
};

/**
 * Drives the real `rt.breaker('sms')` so that it receives exactly the model's
 * event: failures are real failing calls (rejections, or timeouts on the
 * simulated clock), trials are real calls to a fake service held open until
 * the path resolves or rejects them.
 */
function driverFor(failWith: 'rejection' | 'timeout', turns = false): { driver: Driver; rt: Runtime } {
  const clock = new TestClock(0, { turns });
  const rt = createRuntime({ clock });
  runtimes.push(rt);
  const callTimeoutMs = failWith === 'timeout' ? 50 : 0;
  const { name, ...options } = settings;
  const sms = rt.breaker(name, {
    ...options,
    slowCallMs,
    callTimeoutMs,
    isFailure: (e) => !(e instanceof Ignored),
  });
  const published: string[] = [];
  rt.bus.subscribe('breaker.sms.*', (_p, e) => {
    published.push(e.type);
  });
  const trials: Trial[] = [];
  let previous: AnyMachineSnapshot | undefined;
  let publishedBefore = 0;
  let visitBefore = 0;
  let lastEvent = '';

  const failOnce = async () => {
    if (failWith === 'rejection') {
      await expect(sms.call(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
      return;
    }
    const outcome = sms.call(() => new Promise(() => {})).catch((e) => e);
    await clock.advance(callTimeoutMs);
    expect(await outcome).toBeInstanceOf(CallTimeoutError);
  };

  const driver: Driver = {
    async send(step: ModelStep) {
      publishedBefore = published.length;
      lastEvent = step.event.type;
      const kind = eventKind(step.event);
      if (kind.kind === 'after') {
        await clock.advance((previous as AnyMachineSnapshot).context.openMs);
        return;
      }
      const event = step.event as BreakerEvent;
      switch (event.type) {
        case 'call.failure':
          for (let i = 0; i < event.successesBefore; i++) expect(await sms.call(() => 'fine')).toBe('fine');
          await failOnce();
          return;
        case 'call.slow': {
          for (let i = 0; i < event.successesBefore; i++) expect(await sms.call(() => 'fine')).toBe('fine');
          const slow = sms.call(() => new Promise((resolve) => clock.setTimeout(() => resolve('late'), slowCallMs)));
          await clock.advance(slowCallMs);
          expect(await slow).toBe('late');
          return;
        }
        case 'fleet.opened':
        case 'fleet.closed':
        case 'fleet.lost':
        case 'fleet.joined':
          sms.actor.send(event);
          await settle();
          return;
        case 'trial.start': {
          let invoked = false;
          const trial = {} as Trial;
          sms
            .call(
              () =>
                new Promise((resolve, reject) => {
                  invoked = true;
                  Object.assign(trial, { resolve, reject, deadline: clock.now() + callTimeoutMs });
                }),
            )
            .catch(() => {});
          expect(invoked).toBe(true);
          trials.push(trial);
          return;
        }
        case 'trial.success':
          trials.shift()?.resolve('sent');
          await settle();
          return;
        case 'trial.release':
          trials.shift()?.reject(new Ignored('not a failure'));
          await settle();
          return;
        case 'trial.failure': {
          const trial = trials.shift() as Trial;
          if (failWith === 'rejection') trial.reject(new Error('still down'));
          else await clock.advance(trial.deadline - clock.now());
          await settle();
          return;
        }
        case 'isolate':
          sms.isolate();
          return;
        case 'reset':
          sms.reset();
          return;
      }
    },
    observe: () => sms.state,
    async check(expected) {
      const context = expected.context as BreakerContext;
      const actual = sms.actor.getSnapshot().context;
      // Outside closed the closed-state counts are not part of the state (see withoutVisit).
      const key = (c: BreakerContext) =>
        expected.value === 'closed' ? { ...c, visit: 0 } : { ...c, visit: 0, failures: 0, window: '' };
      expect(key(actual)).toEqual(key(context));
      const entered = previous !== undefined && previous.value !== expected.value;
      // A new visit with every mode entered and every reset, and none otherwise.
      const resets = expected.value === 'closed' && lastEvent === 'reset';
      if (previous) expect(actual.visit - visitBefore).toBe(entered || resets ? 1 : 0);
      visitBefore = actual.visit;
      // Every state change is announced on the bus, and nothing else is.
      expect(published.length - publishedBefore).toBe(entered ? 1 : 0);
      if (entered) expect(published.at(-1)).toBe(topicOf[expected.value as string]);
      if (expected.value === 'open' && entered) expect(sms.retryAfterMs).toBe(context.openMs);
      const refuses =
        expected.value === 'open' ||
        expected.value === 'isolated' ||
        (expected.value === 'halfOpen' && context.trials >= context.halfOpenMaxCalls);
      if (refuses) {
        let invoked = false;
        const error = await sms
          .call(() => {
            invoked = true;
          })
          .catch((e) => e);
        expect(invoked).toBe(false);
        expect(error).toBeInstanceOf(CircuitOpenError);
      }
      if (expected.value === 'closed') expect(sms.retryAfterMs).toBe(0);
      previous = expected;
      publishedBefore = published.length;
    },
  };
  return { driver, rt };
}

describe('breaker machine, from its graph', () => {
  it('covers every state and transition', () => {
    expect(plan.coverage.complete, plan.coverage.format('breaker')).toBe(true);
  });

  describe.each(['rejection', 'timeout'] as const)('failures by %s', (failWith) => {
    it.each(plan.paths.map((p) => [p.description, p]))('%s', async (_name, path) => {
      const { driver } = driverFor(failWith);
      await replayPath(path, driver);
    });
  });

  // Deadlines stamped once per event-loop turn (the system clock's way) instead of at each call.
  describe('failures by timeout, deadlines stamped at the end of each turn', () => {
    it.each(plan.paths.map((p) => [p.description, p]))('%s', async (_name, path) => {
      const { driver } = driverFor('timeout', true);
      await replayPath(path, driver);
    });
  });
});
