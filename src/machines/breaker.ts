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
 * the one its call started in.
 *
 * Slow calls (issue #18): a success slower than `slowCallMs` is told as
 * `call.slow` (it enters the window as `W`), and trips the circuit through
 * `slowCallRate`; the effects decide what is slow, the machine what it means.
 * A bulkhead refusal changes no mode, so it never reaches the machine.
 *
 * Fleet scope (issue #18): `shared` says the closed-state counts that trip the
 * circuit are the fleet's (kept in the store), not this process's: the machine
 * still counts what it sees, but only `fleet.opened` opens it and only
 * `fleet.closed` ends a half-open period, both sent by the fleet link
 * (`src/actors/breaker/fleet.ts`). `fleet.lost` / `fleet.joined` switch back
 * and forth between local and shared counting when the store is unreachable. While the actor is mid-transition (a handler of
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
  /** Slow-call share over the same window that opens the circuit; `undefined` = off. */
  slowCallRate: number | undefined;
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
  /** The last `windowSize` counted outcomes in closed, oldest first: `S` success, `F` failure, `W` slow success. */
  window: string;
  /** Trial calls in flight in halfOpen. */
  trials: number;
  /** Successful trials in this halfOpen period. */
  successes: number;
  /** Length of the current (or next) open period; grows with backoff on re-opens. */
  openMs: number;
  /** Numbers every entry into a mode and every reset: a call belongs to the visit it started in. */
  visit: number;
  /** Fleet scope, joined: the fleet's counts trip the circuit and close it, not this process's. */
  shared: boolean;
}

/**
 * Events a breaker receives. Only outcomes that can change its state are sent:
 * a success in closed is not an event; the successes since the last counted
 * failure travel with that failure (`successesBefore`), so the window stays exact.
 */
export type BreakerEvent =
  | { type: 'call.failure'; successesBefore: number }
  /** A success slower than `slowCallMs` (only sent when `slowCallRate` is set). */
  | { type: 'call.slow'; successesBefore: number }
  | { type: 'trial.start' }
  | { type: 'trial.success' }
  | { type: 'trial.failure' }
  /** A trial ended with an error `isFailure` does not count: it frees its slot only. */
  | { type: 'trial.release' }
  | { type: 'isolate' }
  | { type: 'reset' }
  /** The fleet opened the circuit (another process, or this one's flush): an open period of `openMs`. */
  | { type: 'fleet.opened'; openMs: number }
  /** The fleet closed the circuit (a trial succeeded somewhere, or a reset). */
  | { type: 'fleet.closed' }
  /** The store became unreachable: count and trip locally. */
  | { type: 'fleet.lost' }
  /** The store answers again: the fleet's counts rule. */
  | { type: 'fleet.joined' };

/** The modes of a breaker. */
export type BreakerState = 'closed' | 'open' | 'halfOpen' | 'isolated';

/** What closed-state counting needs: the settings and the counts so far. */
export type ClosedCounts = Pick<
  BreakerContext,
  'failureThreshold' | 'failureRate' | 'slowCallRate' | 'minimumCalls' | 'windowSize' | 'failures' | 'window'
>;

/** One counted closed-state outcome: a failure (`F`) or a slow success (`W`), after `successesBefore` plain successes. */
export interface ClosedOutcome {
  kind: 'F' | 'W';
  successesBefore: number;
}

/**
 * The window and consecutive count after one more counted outcome. Shared by
 * the machine and the fleet (which applies every process's outcomes to one
 * set of counts), so both decide alike.
 */
export function afterOutcome(c: ClosedCounts, o: ClosedOutcome): { window: string; failures: number } {
  // Capped at the threshold: beyond it the count decides nothing (and a shared count that may not trip stays bounded).
  const failures = o.kind === 'W' ? 0 : o.successesBefore > 0 ? 1 : Math.min(c.failureThreshold, c.failures + 1);
  if (c.failureRate === undefined && c.slowCallRate === undefined) return { window: '', failures };
  const n = c.windowSize;
  const window = `${c.window}${'S'.repeat(Math.min(o.successesBefore, n))}${o.kind}`.slice(-n);
  return { window, failures };
}

/** The counts after `successes` plain successes and nothing else (the fleet's flush of a quiet batch). */
export function afterSuccesses(c: ClosedCounts, successes: number): { window: string; failures: number } {
  if (successes === 0) return { window: c.window, failures: c.failures };
  if (c.failureRate === undefined && c.slowCallRate === undefined) return { window: '', failures: 0 };
  return { window: `${c.window}${'S'.repeat(Math.min(successes, c.windowSize))}`.slice(-c.windowSize), failures: 0 };
}

/** True when counts that are already `after` an outcome open the circuit. */
export function trips(c: ClosedCounts, after: { window: string; failures: number }): boolean {
  if (after.failures >= c.failureThreshold) return true;
  const w = after.window;
  if (w.length === 0 || w.length < c.minimumCalls) return false;
  if (c.failureRate !== undefined && count(w, 70) / w.length >= c.failureRate) return true;
  return c.slowCallRate !== undefined && count(w, 87) / w.length >= c.slowCallRate;
}

function count(window: string, code: number): number {
  let f = 0;
  for (let i = 0; i < window.length; i++) if (window.charCodeAt(i) === code) f++;
  return f;
}

function outcomeOf(event: BreakerEvent): ClosedOutcome | undefined {
  if (event.type === 'call.failure') return { kind: 'F', successesBefore: event.successesBefore };
  if (event.type === 'call.slow') return { kind: 'W', successesBefore: event.successesBefore };
  return undefined;
}

function payload(context: BreakerContext, state: BreakerState, retryAfterMs: number) {
  return {
    breaker: context.name,
    state,
    failures: context.failures,
    windowCalls: context.window.length,
    windowFailures: count(context.window, 70),
    windowSlowCalls: count(context.window, 87),
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
    // The rules live in `trips` (the fleet applies them too); split so the diagram names the reason.
    reachesFailureThreshold: ({ context, event }) => {
      const o = outcomeOf(event);
      return !context.shared && o !== undefined && afterOutcome(context, o).failures >= context.failureThreshold;
    },
    exceedsRate: ({ context, event }) => {
      const o = outcomeOf(event);
      return !context.shared && o !== undefined && trips(context, afterOutcome(context, o));
    },
    hasTrialRoom: ({ context }) => context.trials < context.halfOpenMaxCalls,
    // Shared: the fleet counts the successes of every process's trials and says when it closes.
    reachesSuccessThreshold: ({ context }) => !context.shared && context.successes + 1 >= context.successThreshold,
  },
  actions: {
    countOutcome: assign(({ context, event }) => {
      const o = outcomeOf(event);
      return o ? afterOutcome(context, o) : {};
    }),
    adoptOpenMs: assign({
      openMs: ({ context, event }) => (event.type === 'fleet.opened' ? event.openMs : context.openMs),
    }),
    share: assign({ shared: true }),
    unshare: assign({ shared: false }),
    admitTrial: assign({ trials: ({ context }) => context.trials + 1 }),
    countTrialSuccess: assign({
      trials: ({ context }) => Math.max(0, context.trials - 1),
      // Shared: the fleet counts them (and this count would only grow, trials never closing it here).
      successes: ({ context }) => (context.shared ? context.successes : context.successes + 1),
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
  context: ({ input }) => ({ ...input, ...initialCounts, openMs: input.resetTimeoutMs, visit: 0, shared: false }),
  initial: 'closed',
  // In every mode: whether the counts are shared changes how later outcomes count, not the mode.
  on: {
    'fleet.lost': { actions: 'unshare' },
    'fleet.joined': { actions: 'share' },
  },
  states: {
    closed: {
      entry: 'startVisit',
      on: {
        'call.failure': [
          { guard: 'reachesFailureThreshold', target: 'open', actions: 'countOutcome' },
          // A failure can tip either rate (a slow share too, once the window holds minimumCalls).
          { guard: 'exceedsRate', target: 'open', actions: 'countOutcome' },
          { actions: 'countOutcome' },
        ],
        // A slow call is a success: it ends a failure streak, and only a rate can trip on it.
        'call.slow': [{ guard: 'exceedsRate', target: 'open', actions: 'countOutcome' }, { actions: 'countOutcome' }],
        'fleet.opened': { target: 'open', actions: 'adoptOpenMs' },
        isolate: { target: 'isolated' },
        // Already closed: forget the failures seen so far and the calls in flight, announce nothing (no state change).
        reset: { actions: ['clearCounts', 'startVisit'] },
      },
    },
    open: {
      entry: ['startVisit', 'publishOpened'],
      after: { openDelay: { target: 'halfOpen' } },
      on: {
        // A later fleet period while this process still waits out the earlier one: its trials ask the store anyway.
        'fleet.opened': { actions: 'adoptOpenMs' },
        'fleet.closed': { target: 'closed', actions: ['clearCounts', 'publishClosed'] },
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
        'fleet.opened': { target: 'open', actions: 'adoptOpenMs' },
        'fleet.closed': { target: 'closed', actions: ['clearCounts', 'publishClosed'] },
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
