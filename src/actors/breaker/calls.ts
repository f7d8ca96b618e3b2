import type { ActorRefFrom } from 'xstate';
import type { Clock } from '../../core/clock.js';
import { CallTimeoutError, CircuitOpenError, KeelError, type RefusingState } from '../../core/errors.js';
import type { BreakerEvent, BreakerState, breakerMachine } from '../../machines/breaker.js';
import { type Deadline, Deadlines, UNSTAMPED } from './deadlines.js';
import type { ResolvedBreakerOptions } from './options.js';

/** The breaker's actor. */
export type BreakerActor = ActorRefFrom<typeof breakerMachine>;

/** A function guarded by a breaker; `signal` aborts when the call times out. */
export type Guarded<T> = (signal: AbortSignal) => T | PromiseLike<T>;

/** What a breaker has seen since it was created. */
export interface BreakerStats {
  state: BreakerState;
  /** Every `call()`. */
  calls: number;
  successes: number;
  /** Calls that failed in a way that counts (`isFailure`), timeouts included. */
  failures: number;
  /** Calls that exceeded `callTimeoutMs` (also counted in `failures`). */
  timeouts: number;
  /** Calls refused by an open, isolated or full half-open circuit. */
  rejections: number;
  /** Calls that threw an error `isFailure` does not count; rethrown, not counted as failures. */
  ignoredErrors: number;
  /** Admitted calls not finished yet. */
  inFlight: number;
}

// A call with no timeout and no use for a signal shares this one; it never aborts.
const NEVER = new AbortController().signal;

/**
 * One guarded call with a deadline. A plain object with methods (not closures)
 * keeps the per-call allocation small.
 */
class TimedCall implements Deadline {
  prev: Deadline | undefined = undefined;
  next: Deadline | undefined = undefined;
  done = false;
  /** Set by `Deadlines.add`. */
  deadline = UNSTAMPED;
  resolve!: (value: any) => void;
  reject!: (error: unknown) => void;

  constructor(
    readonly breaker: GuardedCalls,
    readonly trial: boolean,
    /** The machine's `visit` when the call started. */
    readonly visit: number,
    readonly controller: AbortController | undefined,
  ) {}

  expire(): void {
    if (this.done) return;
    this.done = true;
    const error = new CallTimeoutError(this.breaker.name, this.breaker.options.callTimeoutMs);
    this.controller?.abort(error);
    this.breaker.timedOut(this);
    this.reject(error);
  }

  settle(ok: boolean, value: unknown): void {
    if (this.done) return; // it timed out first; its late outcome changes nothing
    this.done = true;
    this.breaker.deadlines?.remove(this);
    this.breaker.finished(this);
    if (ok) {
      this.breaker.succeeded(this.trial, this.visit);
      this.resolve(value);
    } else {
      this.breaker.failed(value, this.trial, this.visit);
      this.reject(value);
    }
  }
}

/**
 * The effect side of a circuit breaker: runs guarded calls, applies timeouts,
 * keeps statistics and tells the breaker machine (its actor) about outcomes
 * that can change its state. It follows the contract written at the top of
 * `src/machines/breaker.ts`: the machine decides the mode and the trial slots;
 * this class asks the actor's snapshot each time and copies none of it.
 *
 * A success in closed sends nothing; it is only counted here and travels with
 * the next counted failure (`successesBefore`).
 */
export class GuardedCalls {
  /** Created with the first timed call: many breakers never time anything. */
  deadlines: Deadlines | undefined;
  /** Closed-state successes not told to the machine yet (telling each would cost an event per call)... */
  private successesBefore = 0;
  /** ...and the visit they belong to: a failure of another visit does not carry them. */
  private successesVisit = 0;
  /** When the open period numbered `openedVisit` began: the machine has no clock. */
  private openedAt = 0;
  private openedVisit = -1;
  /** Set by `stop()`: the runtime is stopping, which the machine does not model. */
  private stopped = false;
  /** Timed trials in flight (deadline data): when the earliest of this visit ends, a slot frees. */
  private trialCalls: TimedCall[] | undefined;
  private readonly counts = {
    calls: 0,
    successes: 0,
    failures: 0,
    timeouts: 0,
    rejections: 0,
    ignoredErrors: 0,
    inFlight: 0,
  };

  constructor(
    readonly name: string,
    readonly options: ResolvedBreakerOptions,
    readonly actor: BreakerActor,
    private readonly clock: Clock,
    private readonly report: (error: unknown, detail: string) => void,
  ) {}

  /** The machine's current mode. */
  get state(): BreakerState {
    return this.actor.getSnapshot().value as BreakerState;
  }

  /** Milliseconds until a trial call is admitted: 0 when a call would be admitted now, `Infinity` while isolated. */
  get retryAfterMs(): number {
    const snap = this.actor.getSnapshot();
    switch (snap.value as BreakerState) {
      case 'closed':
        return 0;
      case 'open':
        // Opened by an event sent straight to the actor: its start is unknown, so the whole period.
        if (snap.context.visit !== this.openedVisit) return snap.context.openMs;
        // At least 1: the trial is allowed only once the timer has fired.
        return Math.max(1, this.openedAt + snap.context.openMs - this.clock.now());
      case 'halfOpen':
        return snap.can(TRIAL_START) ? 0 : this.trialSlotFreesIn(snap.context.visit);
      default:
        return Number.POSITIVE_INFINITY;
    }
  }

  /** A copy of the statistics. */
  get stats(): BreakerStats {
    return { state: this.state, ...this.counts };
  }

  /** Runs `fn` through the breaker. */
  call<T>(fn: Guarded<T>): Promise<T> {
    this.counts.calls++;
    if (typeof fn !== 'function') {
      return Promise.reject(new KeelError('INVALID_OPTIONS', `breaker('${this.name}').call: expects a function`));
    }
    return this.admit(fn);
  }

  /** Forces the circuit open until `reset()`. */
  isolate(): void {
    this.send(ISOLATE);
  }

  /** Forces the circuit closed and forgets failures; calls started before it no longer count (a new visit). */
  reset(): void {
    this.send(RESET);
  }

  /** The runtime is stopping: refuse new calls; calls in flight finish or time out, then the timer is released. */
  stop(): void {
    this.stopped = true;
    this.deadlines?.close();
  }

  private admit<T>(fn: Guarded<T>): Promise<T> {
    const snap = this.actor.getSnapshot();
    const mode = snap.value as BreakerState;
    if (this.stopped) return this.refuse(mode);
    if (mode === 'closed') return this.run(fn, false, snap.context.visit);
    if (mode !== 'halfOpen') return this.refuse(mode);
    // The machine's answer to `trial.start` would wait in its mailbox: ask once it is at rest.
    if (isProcessing(this.actor)) return Promise.resolve().then(() => this.admit(fn));
    this.actor.send(TRIAL_START);
    const after = this.actor.getSnapshot();
    if (after.context.visit === snap.context.visit && after.context.trials > snap.context.trials) {
      return this.run(fn, true, snap.context.visit);
    }
    return this.refuse(after.value as BreakerState);
  }

  // After rt.stop() the actor is gone; an event arriving later has nothing left to change.
  private send(event: BreakerEvent): void {
    if (this.actor.getSnapshot().status === 'active') this.actor.send(event);
  }

  /** Tells the outcome of a call that started in `visit`, unless the machine has moved on since. */
  private tell(event: BreakerEvent, visit: number): void {
    // Mid-transition the machine has not handled the events queued before this one: wait until it has.
    if (isProcessing(this.actor)) {
      queueMicrotask(() => this.tell(event, visit));
      return;
    }
    const snap = this.actor.getSnapshot();
    if (snap.status !== 'active' || snap.context.visit !== visit) return;
    this.actor.send(event);
    const after = this.actor.getSnapshot();
    if (after.value === 'open' && after.context.visit !== this.openedVisit) {
      this.openedVisit = after.context.visit;
      this.openedAt = this.clock.now();
    }
  }

  // `mode` is only 'closed' when stopped, which is refused first.
  private refuse(mode: BreakerState): Promise<never> {
    if (this.stopped) {
      return Promise.reject(new KeelError('RUNTIME_STOPPED', `breaker('${this.name}').call: the runtime was stopped`));
    }
    this.counts.rejections++;
    const retryAfterMs = this.retryAfterMs;
    const state = mode as RefusingState;
    const error = this.options.captureStack
      ? new CircuitOpenError(this.name, retryAfterMs, state)
      : CircuitOpenError.unstacked(this.name, retryAfterMs, state);
    // Rejecting a promise nobody listens to yet costs Node's unhandled-rejection bookkeeping
    // (~0.5 µs); rejecting a microtask later, after the caller's await attached, does not.
    return new Promise((_, reject) => queueMicrotask(() => reject(error)));
  }

  private run<T>(fn: Guarded<T>, trial: boolean, visit: number): Promise<T> {
    this.counts.inFlight++;
    const timeoutMs = this.options.callTimeoutMs;
    if (timeoutMs === 0) return this.runUntimed(fn, trial, visit);
    // An AbortSignal costs ~3 µs to create (Node 20), ten times the rest of a call: only when fn takes one.
    const controller = this.wantsSignal(fn) ? new AbortController() : undefined;
    const call = new TimedCall(this, trial, visit, controller);
    if (trial) (this.trialCalls ??= []).push(call);
    const promise = new Promise<T>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    (this.deadlines ??= new Deadlines(this.clock, timeoutMs)).add(call);
    let result: T | PromiseLike<T>;
    try {
      result = fn(controller ? controller.signal : NEVER);
    } catch (error) {
      call.settle(false, error);
      return promise;
    }
    if (isThenable(result)) {
      result.then(
        (value) => call.settle(true, value),
        (error) => call.settle(false, error),
      );
    } else {
      call.settle(true, result);
    }
    return promise;
  }

  /** The last function seen and whether it takes a signal (a cache, not state). */
  private lastFn: unknown;
  private lastWantsSignal = false;

  // Reading `fn.length` is a native accessor call; loops that pass the same function skip it.
  private wantsSignal(fn: Function): boolean {
    if (fn !== this.lastFn) {
      this.lastFn = fn;
      this.lastWantsSignal = fn.length > 0;
    }
    return this.lastWantsSignal;
  }

  private async runUntimed<T>(fn: Guarded<T>, trial: boolean, visit: number): Promise<T> {
    let value: T;
    try {
      value = await fn(NEVER);
    } catch (error) {
      this.failed(error, trial, visit);
      throw error;
    }
    this.succeeded(trial, visit);
    return value;
  }

  /** @internal a call finished in time. */
  succeeded(trial: boolean, visit: number): void {
    this.counts.inFlight--;
    this.counts.successes++;
    if (trial) {
      this.tell(TRIAL_SUCCESS, visit);
      return;
    }
    // Visits only grow: a success of a later visit starts a new count, one of an earlier visit is stale.
    if (visit !== this.successesVisit) {
      if (visit < this.successesVisit) return;
      this.successesVisit = visit;
      this.successesBefore = 0;
    }
    this.successesBefore++;
  }

  /** @internal a call threw or rejected. */
  failed(error: unknown, trial: boolean, visit: number): void {
    this.counts.inFlight--;
    if (!this.countsAsFailure(error)) {
      this.counts.ignoredErrors++;
      if (trial) this.tell(TRIAL_RELEASE, visit);
      return;
    }
    this.counts.failures++;
    this.countedFailure(trial, visit);
  }

  /** @internal a timed call ended (either way). */
  finished(call: TimedCall): void {
    if (!call.trial || !this.trialCalls) return;
    const i = this.trialCalls.indexOf(call);
    if (i >= 0) this.trialCalls.splice(i, 1);
  }

  /** @internal a call passed its deadline. */
  timedOut(call: TimedCall): void {
    this.finished(call);
    this.counts.inFlight--;
    this.counts.failures++;
    this.counts.timeouts++;
    this.countedFailure(call.trial, call.visit);
  }

  private countedFailure(trial: boolean, visit: number): void {
    if (trial) {
      this.tell(TRIAL_FAILURE, visit);
      return;
    }
    let successesBefore = 0;
    if (visit === this.successesVisit) {
      successesBefore = this.successesBefore;
      this.successesBefore = 0;
    }
    this.tell({ type: 'call.failure', successesBefore }, visit);
  }

  private countsAsFailure(error: unknown): boolean {
    const isFailure = this.options.isFailure;
    if (!isFailure) return true;
    try {
      return isFailure(error) !== false;
    } catch (e) {
      this.report(e, `breaker('${this.name}'): isFailure threw; the error counts as a failure`);
      return true;
    }
  }

  private trialSlotFreesIn(visit: number): number {
    // No timeout: nothing bounds a trial, so suggest the base open period.
    if (this.options.callTimeoutMs === 0) return this.options.resetTimeoutMs;
    const now = this.clock.now();
    let earliest = Number.POSITIVE_INFINITY;
    // An unstamped trial started in this turn: its deadline is at least now + callTimeoutMs.
    for (const t of this.trialCalls ?? []) {
      if (t.visit !== visit) continue;
      earliest = Math.min(earliest, t.deadline === UNSTAMPED ? now + this.options.callTimeoutMs : t.deadline);
    }
    if (earliest === Number.POSITIVE_INFINITY) return 1;
    return Math.max(1, Math.min(this.options.resetTimeoutMs, earliest - now));
  }
}

/**
 * True while the actor handles an event: one sent now waits in its mailbox
 * until that handling ends, so its effect cannot be seen on return. XState has
 * no public way to tell; its mailbox's `_current` is the event being handled
 * (checked on xstate 5.33; the halfOpened-handler tests fail if that changes).
 */
function isProcessing(actor: BreakerActor): boolean {
  return (actor as unknown as { mailbox?: { _current?: unknown } }).mailbox?._current != null;
}

const TRIAL_START: BreakerEvent = { type: 'trial.start' };
const TRIAL_SUCCESS: BreakerEvent = { type: 'trial.success' };
const TRIAL_FAILURE: BreakerEvent = { type: 'trial.failure' };
const TRIAL_RELEASE: BreakerEvent = { type: 'trial.release' };
const ISOLATE: BreakerEvent = { type: 'isolate' };
const RESET: BreakerEvent = { type: 'reset' };

function isThenable<T>(x: T | PromiseLike<T>): x is PromiseLike<T> {
  return x !== null && typeof x === 'object' && typeof (x as PromiseLike<T>).then === 'function';
}
