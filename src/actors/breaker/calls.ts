import type { ActorRefFrom, SnapshotFrom } from 'xstate';
import type { Clock } from '../../core/clock.js';
import { CallTimeoutError, CircuitOpenError, KeelError, type RefusingState } from '../../core/errors.js';
import type { BreakerEvent, BreakerState, breakerMachine } from '../../machines/breaker.js';
import { type Deadline, Deadlines, UNSTAMPED } from './deadlines.js';
import type { ResolvedBreakerOptions } from './options.js';

/** The breaker's actor. */
export type BreakerActor = ActorRefFrom<typeof breakerMachine>;
type Snapshot = SnapshotFrom<typeof breakerMachine>;

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
    readonly period: number,
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
      this.breaker.succeeded(this.trial, this.period);
      this.resolve(value);
    } else {
      this.breaker.failed(value, this.trial, this.period);
      this.reject(value);
    }
  }
}

/**
 * The effect side of a circuit breaker: runs guarded calls, applies timeouts,
 * keeps statistics and tells the breaker machine (its actor) about outcomes
 * that can change its state. The machine decides the mode; this class reads the
 * mode from the actor's snapshot on every call, so it is never stale, not even
 * inside a bus handler that reacts to the breaker's own state change.
 *
 * A success in closed sends nothing; it is only counted here and travels with
 * the next counted failure (`successesBefore`).
 */
export class GuardedCalls {
  /** Created with the first timed call: many breakers never time anything. */
  deadlines: Deadlines | undefined;
  private snap: Snapshot;
  /** Bumped on every mode change: an outcome from an earlier period must not drive the machine. */
  private period = 0;
  private openedAt = 0;
  /** When the last counted failure was told to the machine: an open period starts with one. */
  private lastFailureAt = 0;
  private trials = 0;
  private successesBefore = 0;
  private stopped = false;
  /** Trials in flight that have a deadline (at most halfOpenMaxCalls): when the earliest ends, a slot frees. */
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
  ) {
    this.snap = actor.getSnapshot();
  }

  /** The machine's current mode. */
  get state(): BreakerState {
    return this.current().value as BreakerState;
  }

  /** Milliseconds until a trial call is admitted: 0 when a call would be admitted now, `Infinity` while isolated. */
  get retryAfterMs(): number {
    const snap = this.current();
    switch (snap.value as BreakerState) {
      case 'closed':
        return 0;
      case 'open':
        // At least 1: the trial is allowed only once the timer has fired.
        return Math.max(1, this.openedAt + snap.context.openMs - this.clock.now());
      case 'halfOpen':
        return this.trials < this.options.halfOpenMaxCalls ? 0 : this.trialSlotFreesIn();
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
    const snap = this.actor.getSnapshot();
    if (snap !== this.snap) this.sync(snap);
    if (typeof fn !== 'function') {
      return Promise.reject(new KeelError('INVALID_OPTIONS', `breaker('${this.name}').call: expects a function`));
    }
    const mode = snap.value;
    if (mode === 'closed' && !this.stopped) return this.run(fn, false);
    if (mode === 'halfOpen' && !this.stopped && this.trials < this.options.halfOpenMaxCalls) {
      this.trials++;
      this.tell(TRIAL_START);
      return this.run(fn, true);
    }
    return this.refuse(mode as RefusingState);
  }

  /** Forces the circuit open until `reset()`. */
  isolate(): void {
    this.tell(ISOLATE);
  }

  /** Forces the circuit closed and forgets failures. */
  reset(): void {
    this.tell(RESET);
    // Also when already closed: calls started before the reset must not count afterwards.
    this.newPeriod();
  }

  /** The runtime is stopping: refuse new calls; calls in flight finish or time out, then the timer is released. */
  stop(): void {
    this.stopped = true;
    this.deadlines?.close();
  }

  // After rt.stop() the actor is gone; an outcome arriving later has nothing left to change.
  private tell(event: BreakerEvent): void {
    if (this.actor.getSnapshot().status !== 'active') return;
    this.actor.send(event);
    this.current();
  }

  // `mode` is only 'closed' when stopped, which is refused first.
  private refuse(mode: RefusingState): Promise<never> {
    if (this.stopped) {
      return Promise.reject(new KeelError('RUNTIME_STOPPED', `breaker('${this.name}').call: the runtime was stopped`));
    }
    this.counts.rejections++;
    const retryAfterMs = this.retryAfterMs;
    const error = this.options.captureStack
      ? new CircuitOpenError(this.name, retryAfterMs, mode)
      : CircuitOpenError.unstacked(this.name, retryAfterMs, mode);
    // Rejecting a promise nobody listens to yet costs Node's unhandled-rejection bookkeeping
    // (~0.5 µs); rejecting a microtask later, after the caller's await attached, does not.
    return new Promise((_, reject) => queueMicrotask(() => reject(error)));
  }

  private run<T>(fn: Guarded<T>, trial: boolean): Promise<T> {
    this.counts.inFlight++;
    const timeoutMs = this.options.callTimeoutMs;
    if (timeoutMs === 0) return this.runUntimed(fn, trial, this.period);
    // An AbortSignal costs ~3 µs to create (Node 20), ten times the rest of a call: only when fn takes one.
    const controller = this.wantsSignal(fn) ? new AbortController() : undefined;
    const call = new TimedCall(this, trial, this.period, controller);
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

  private async runUntimed<T>(fn: Guarded<T>, trial: boolean, period: number): Promise<T> {
    let value: T;
    try {
      value = await fn(NEVER);
    } catch (error) {
      this.failed(error, trial, period);
      throw error;
    }
    this.succeeded(trial, period);
    return value;
  }

  /** @internal a call finished in time. */
  succeeded(trial: boolean, period: number): void {
    this.counts.inFlight--;
    this.counts.successes++;
    this.current();
    if (period !== this.period) return;
    if (!trial) {
      this.successesBefore++;
      return;
    }
    this.trials--;
    this.tell(TRIAL_SUCCESS);
  }

  /** @internal a call threw or rejected. */
  failed(error: unknown, trial: boolean, period: number): void {
    this.counts.inFlight--;
    if (!this.countsAsFailure(error)) {
      this.counts.ignoredErrors++;
      this.current();
      if (period === this.period && trial) {
        this.trials--;
        this.tell(TRIAL_RELEASE);
      }
      return;
    }
    this.counts.failures++;
    this.countedFailure(trial, period);
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
    this.countedFailure(call.trial, call.period);
  }

  private countedFailure(trial: boolean, period: number): void {
    this.current();
    if (period !== this.period) return;
    this.lastFailureAt = this.clock.now();
    if (trial) {
      this.trials--;
      this.tell(TRIAL_FAILURE);
      return;
    }
    const successesBefore = this.successesBefore;
    this.successesBefore = 0;
    this.tell({ type: 'call.failure', successesBefore });
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

  private trialSlotFreesIn(): number {
    // No timeout: nothing bounds a trial, so suggest the base open period.
    if (this.options.callTimeoutMs === 0) return this.options.resetTimeoutMs;
    if (!this.trialCalls || this.trialCalls.length === 0) return 1;
    const now = this.clock.now();
    let earliest = Number.POSITIVE_INFINITY;
    // An unstamped trial started in this turn: its deadline is at least now + callTimeoutMs.
    for (const t of this.trialCalls) {
      earliest = Math.min(earliest, t.deadline === UNSTAMPED ? now + this.options.callTimeoutMs : t.deadline);
    }
    return Math.max(1, Math.min(this.options.resetTimeoutMs, earliest - now));
  }

  private current(): Snapshot {
    const snap = this.actor.getSnapshot();
    if (snap !== this.snap) this.sync(snap);
    return snap;
  }

  /** Follows the machine: a new mode starts a new period with fresh local counts. */
  private sync(snap: Snapshot): void {
    const before = this.snap.value;
    this.snap = snap;
    if (snap.value === before) return;
    this.newPeriod();
    // Read lazily (no subscription: it costs ~1.5 KB per breaker); the failure that opened it carries the time.
    if (snap.value === 'open') this.openedAt = this.lastFailureAt;
  }

  private newPeriod(): void {
    this.period++;
    this.trials = 0;
    this.successesBefore = 0;
    if (this.trialCalls) this.trialCalls.length = 0;
  }
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
