/**
 * The breaker's contract between machine and effects (issue #11).
 *
 * The machine owns everything about the mode: the mode itself, the failure
 * counts and window, the trial slots in use (`trials`, guard `hasTrialRoom`),
 * the successes of a halfOpen period, the open period's length, and `visit`,
 * which numbers each entry into a mode (and each reset), so an outcome can be
 * told apart from one that started before the machine moved on.
 *
 * The effects (`src/actors/breaker/calls.ts`) keep only what the machine cannot
 * know: statistics, per-call deadlines and the calls in flight, the time an open
 * period began (the machine has no clock), and the closed-state successes not
 * told yet (telling each would cost an event per call).
 *
 * Effects ask, never mirror: they read the mode and `visit` from the actor's
 * snapshot when they need them; they admit a trial by sending `trial.start` and
 * seeing whether `trials` grew; they tell an outcome only while `visit` is still
 * the one its call started in. While the actor is mid-transition (a handler of
 * its own bus announcement), an event would wait in its mailbox and its effect
 * could not be seen, so asking waits until the actor is at rest.
 */
import { assign, setup } from 'xstate';
import { publish } from './publish.js';

/** The settings a breaker machine runs with (already validated). */
export interface BreakerSettings {
  /** Topic token of the breaker: state changes go to `breaker.<name>.*`. */
  name: string;
  /** Consecutive counted failures that open the circuit (`Infinity` = off). */
  failureThreshold: number;
  /** Failure share over the window that opens the circuit; `undefined` = rate tripping off. */
  failureRate: number | undefined;
  minimumCalls: number;
  windowSize: number;
  resetTimeoutMs: number;
  maxResetTimeoutMs: number;
  backoffMultiplier: number;
  halfOpenMaxCalls: number;
  successThreshold: number;
}

/**
 * What a breaker machine knows. Every field but `visit` is bounded; graphs of
 * the machine leave `visit` out of the state key, so they stay finite.
 */
export interface BreakerContext extends BreakerSettings {
  /** Consecutive counted failures, as of the last counted failure. */
  failures: number;
  /** The last `windowSize` counted outcomes in closed, oldest first: `S` success, `F` failure. */
  window: string;
  /** Trial calls in flight in halfOpen. */
  trials: number;
  /** Successful trials in this halfOpen period. */
  successes: number;
  /** Length of the current (or next) open period; grows with backoff on re-opens. */
  openMs: number;
  /** Numbers every entry into a mode and every reset: a call belongs to the visit it started in. */
  visit: number;
}

/**
 * Events a breaker receives. Only outcomes that can change its state are sent:
 * a success in closed is not an event; the successes since the last counted
 * failure travel with that failure (`successesBefore`), so the window stays exact.
 */
export type BreakerEvent =
  | { type: 'call.failure'; successesBefore: number }
  | { type: 'trial.start' }
  | { type: 'trial.success' }
  | { type: 'trial.failure' }
  /** A trial ended with an error `isFailure` does not count: it frees its slot only. */
  | { type: 'trial.release' }
  | { type: 'isolate' }
  | { type: 'reset' };

/** The modes of a breaker. */
export type BreakerState = 'closed' | 'open' | 'halfOpen' | 'isolated';

/** The window and consecutive count after one more counted failure. */
function afterFailure(context: BreakerContext, successesBefore: number): { window: string; failures: number } {
  const n = context.windowSize;
  const failures = successesBefore > 0 ? 1 : context.failures + 1;
  if (context.failureRate === undefined) return { window: '', failures };
  const window = `${context.window}${'S'.repeat(Math.min(successesBefore, n))}F`.slice(-n);
  return { window, failures };
}

function countFailures(window: string): number {
  let f = 0;
  for (let i = 0; i < window.length; i++) if (window.charCodeAt(i) === 70) f++;
  return f;
}

function payload(context: BreakerContext, state: BreakerState, retryAfterMs: number) {
  return {
    breaker: context.name,
    state,
    failures: context.failures,
    windowCalls: context.window.length,
    windowFailures: countFailures(context.window),
    successes: context.successes,
    openMs: context.openMs,
    retryAfterMs,
  };
}

const initialCounts = { failures: 0, window: '', trials: 0, successes: 0 };

/**
 * The circuit breaker: `closed → open → halfOpen → closed`, and `isolated`
 * (forced open until `reset`). Pure: the guarded-call actor feeds it outcomes,
 * the runtime's clock drives the open period through the `openDelay` delay.
 */
export const breakerMachine = setup({
  types: {
    context: {} as BreakerContext,
    events: {} as BreakerEvent,
    input: {} as BreakerSettings,
  },
  delays: {
    openDelay: ({ context }) => context.openMs,
  },
  guards: {
    reachesFailureThreshold: ({ context, event }) =>
      event.type === 'call.failure' &&
      afterFailure(context, event.successesBefore).failures >= context.failureThreshold,
    exceedsFailureRate: ({ context, event }) => {
      if (event.type !== 'call.failure' || context.failureRate === undefined) return false;
      const { window } = afterFailure(context, event.successesBefore);
      return window.length >= context.minimumCalls && countFailures(window) / window.length >= context.failureRate;
    },
    hasTrialRoom: ({ context }) => context.trials < context.halfOpenMaxCalls,
    reachesSuccessThreshold: ({ context }) => context.successes + 1 >= context.successThreshold,
  },
  actions: {
    countFailure: assign(({ context, event }) =>
      event.type === 'call.failure' ? afterFailure(context, event.successesBefore) : {},
    ),
    admitTrial: assign({ trials: ({ context }) => context.trials + 1 }),
    countTrialSuccess: assign({
      trials: ({ context }) => Math.max(0, context.trials - 1),
      successes: ({ context }) => context.successes + 1,
    }),
    releaseTrial: assign({ trials: ({ context }) => Math.max(0, context.trials - 1) }),
    startHalfOpen: assign({ trials: 0, successes: 0 }),
    startVisit: assign({ visit: ({ context }) => context.visit + 1 }),
    // A failed trial means the dependency is still down: wait longer next time.
    backOff: assign({
      openMs: ({ context }) => Math.min(context.maxResetTimeoutMs, context.openMs * context.backoffMultiplier),
    }),
    clearCounts: assign(({ context }) => ({ ...initialCounts, openMs: context.resetTimeoutMs })),
    publishOpened: publish(
      ({ context }) => `breaker.${context.name}.opened`,
      ({ context }) => payload(context, 'open', context.openMs),
    ),
    publishIsolated: publish(
      ({ context }) => `breaker.${context.name}.opened`,
      ({ context }) => payload(context, 'isolated', Number.POSITIVE_INFINITY),
    ),
    publishHalfOpened: publish(
      ({ context }) => `breaker.${context.name}.halfOpened`,
      ({ context }) => payload(context, 'halfOpen', 0),
    ),
    publishClosed: publish(
      ({ context }) => `breaker.${context.name}.closed`,
      ({ context }) => payload(context, 'closed', 0),
    ),
  },
}).createMachine({
  id: 'breaker',
  context: ({ input }) => ({ ...input, ...initialCounts, openMs: input.resetTimeoutMs, visit: 0 }),
  initial: 'closed',
  states: {
    closed: {
      entry: 'startVisit',
      on: {
        'call.failure': [
          { guard: 'reachesFailureThreshold', target: 'open', actions: 'countFailure' },
          { guard: 'exceedsFailureRate', target: 'open', actions: 'countFailure' },
          { actions: 'countFailure' },
        ],
        isolate: { target: 'isolated' },
        // Already closed: forget the failures seen so far and the calls in flight, announce nothing (no state change).
        reset: { actions: ['clearCounts', 'startVisit'] },
      },
    },
    open: {
      entry: ['startVisit', 'publishOpened'],
      after: { openDelay: { target: 'halfOpen' } },
      on: {
        isolate: { target: 'isolated' },
        reset: { target: 'closed', actions: ['clearCounts', 'publishClosed'] },
      },
    },
    halfOpen: {
      entry: ['startVisit', 'startHalfOpen', 'publishHalfOpened'],
      on: {
        'trial.start': { guard: 'hasTrialRoom', actions: 'admitTrial' },
        'trial.success': [
          {
            guard: 'reachesSuccessThreshold',
            target: 'closed',
            actions: ['countTrialSuccess', 'publishClosed', 'clearCounts'],
          },
          { actions: 'countTrialSuccess' },
        ],
        'trial.failure': { target: 'open', actions: 'backOff' },
        'trial.release': { actions: 'releaseTrial' },
        isolate: { target: 'isolated' },
        reset: { target: 'closed', actions: ['clearCounts', 'publishClosed'] },
      },
    },
    isolated: {
      entry: ['startVisit', 'publishIsolated'],
      on: {
        reset: { target: 'closed', actions: ['clearCounts', 'publishClosed'] },
      },
    },
  },
});
