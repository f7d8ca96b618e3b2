import type { ActorRefFrom } from 'xstate';
import type { Clock } from '../../core/clock.js';
import { CallTimeoutError, CircuitOpenError, KeelError, type RefusingState } from '../../core/errors.js';
import type { BreakerCallOutcome, BreakerRefusal, TelemetryHooks } from '../../core/telemetry.js';
import type { BreakerEvent, BreakerState, breakerMachine } from '../../machines/breaker.js';
import { Bulkhead, bulkheadFull } from './bulkhead.js';
import { type CallOptions, callWith } from './callOptions.js';
import { type Deadline, Deadlines, UNSTAMPED } from './deadlines.js';
import type { FleetLink } from './fleet.js';
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
  /** Successful calls at least `slowCallMs` slow (also counted in `successes`). */
  slowCalls: number;
  /** Calls refused by the bulkhead (`maxConcurrent` running and `maxQueued` waiting): `BULKHEAD_FULL`. */
  bulkheadRejections: number;
  /** Fleet scope only: `joined` while the fleet's shared state rules, `local` while the store is out of reach (or not open yet). */
  fleet?: 'joined' | 'local';
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
    /** When the call started, if slow calls are measured or telemetry times calls (else 0). */
    readonly started: number,
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
      this.breaker.succeeded(this.trial, this.visit, this.started);
      this.resolve(value);
    } else {
      this.breaker.failed(value, this.trial, this.visit, this.started);
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
  private openStart = 0;
  private openedVisit = -1;
  /** Set by `stop()` or `dispose()`: the runtime is stopping (or the breaker went), which the machine does not model. */
  private stopped: 'runtime' | 'disposed' | undefined;
  /** Fleet scope: the link to the shared state (set once created). */
  fleet: FleetLink | undefined;
  /** Calls waiting for a bulkhead slot (created with the first that waits). */
  private bulkhead: Bulkhead | undefined;
  /** Measures slow calls: reads the clock at each call's start and end. */
  private readonly measuresSlow: boolean;
  /** Telemetry's call-latency and refusal hooks, when the runtime has them. */
  private readonly onCall: ((breaker: string, ms: number, outcome: BreakerCallOutcome) => void) | undefined;
  private readonly onRefused: ((breaker: string, why: BreakerRefusal) => void) | undefined;
  /** Reads the clock at each call's start: slow calls are measured or telemetry wants the latency. */
  private readonly clocked: boolean;
  /** Slow calls move the circuit (`slowCallRate`), else they are only counted. */
  private readonly slowCounts: boolean;
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
    slowCalls: 0,
    bulkheadRejections: 0,
  };

  constructor(
    readonly name: string,
    readonly options: ResolvedBreakerOptions,
    readonly actor: BreakerActor,
    /** @internal the runtime's clock (retries wait on it). */
    readonly clock: Clock,
    private readonly report: (error: unknown, detail: string) => void,
    /** Called once by `dispose()` (the registry forgets the name, the actor stops). */
    private readonly onDispose: () => void = () => {},
    observe?: TelemetryHooks,
  ) {
    this.measuresSlow = options.slowCallMs !== Number.POSITIVE_INFINITY;
    this.onCall = observe?.breakerCall?.bind(observe);
    this.onRefused = observe?.breakerRefused?.bind(observe);
    this.clocked = this.measuresSlow || this.onCall !== undefined;
    this.slowCounts = options.slowCallRate !== undefined;
  }

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
        return Math.max(1, this.openStart + snap.context.openMs - this.clock.now());
      case 'halfOpen':
        if (this.fleet?.joined) return this.fleet.trialRetryAfterMs() ?? 0;
        return snap.can(TRIAL_START) ? 0 : this.trialSlotFreesIn(snap.context.visit);
      default:
        return Number.POSITIVE_INFINITY;
    }
  }

  /** A copy of the statistics. */
  get stats(): BreakerStats {
    const stats: BreakerStats = { state: this.state, ...this.counts };
    if (this.fleet) stats.fleet = this.fleet.joined ? 'joined' : 'local';
    return stats;
  }

  /** Runs `fn` through the breaker; `options` adds retries and a fallback (`callOptions.ts`). */
  call<T>(fn: Guarded<T>, options?: CallOptions<T>): Promise<T> {
    if (options !== undefined) return callWith(this, fn, options);
    this.counts.calls++;
    if (typeof fn !== 'function') {
      return Promise.reject(new KeelError('INVALID_OPTIONS', `breaker('${this.name}').call: expects a function`));
    }
    if (this.counts.inFlight >= this.options.maxConcurrent && !this.stopped) return this.queue(fn);
    return this.admit(fn);
  }

  /** Forces the circuit open until `reset()`. */
  isolate(): void {
    this.send(ISOLATE);
  }

  /** Forces the circuit closed and forgets failures; calls started before it no longer count (a new visit). */
  reset(): void {
    this.send(RESET);
    this.fleet?.reset();
  }

  /** The runtime is stopping: refuse new calls; calls in flight finish or time out, then the timer is released. */
  stop(): void {
    this.stopped ??= 'runtime';
    this.deadlines?.close();
    this.fleet?.stop();
    this.bulkhead?.refuseAll(() => this.stoppedError());
  }

  /**
   * Stops the breaker for good: new calls are refused, waiting ones too, the
   * fleet link and the timers are freed (a call still in flight keeps its
   * deadline timer until it ends), the actor stops and the runtime forgets
   * the name, so `rt.breaker(name)` creates a new one.
   */
  dispose(): void {
    if (this.stopped === 'disposed') return;
    this.stop();
    this.stopped = 'disposed';
    this.onDispose();
  }

  /** @internal the error `isFailure` counts (a throwing `isFailure` counts, and is reported). */
  countsAsFailure(error: unknown): boolean {
    const isFailure = this.options.isFailure;
    if (!isFailure) return true;
    try {
      return isFailure(error) !== false;
    } catch (e) {
      this.report(e, `breaker('${this.name}'): isFailure threw; the error counts as a failure`);
      return true;
    }
  }

  /** Waits for a bulkhead slot, or refuses with `BULKHEAD_FULL` when `maxQueued` wait already. */
  private queue<T>(fn: Guarded<T>): Promise<T> {
    const bulkhead = (this.bulkhead ??= new Bulkhead());
    if (bulkhead.size >= this.options.maxQueued) {
      this.counts.bulkheadRejections++;
      this.onRefused?.(this.name, 'bulkhead');
      return Promise.reject(bulkheadFull(this.name, this.options, this.deadlines?.earliest(), this.clock.now()));
    }
    return bulkhead.wait(fn) as Promise<T>;
  }

  /** A slot freed: the longest-waiting call runs (or is refused by the circuit). */
  private freed(): void {
    const next = this.bulkhead?.take();
    if (next) this.admit(next.fn).then(next.resolve, next.reject);
  }

  private stoppedError(): KeelError {
    return new KeelError(
      'RUNTIME_STOPPED',
      this.stopped === 'disposed'
        ? `breaker('${this.name}').call: the breaker was disposed`
        : `breaker('${this.name}').call: the runtime was stopped`,
    );
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
      if (this.fleet?.joined) return this.claimThenRun(fn, snap.context.visit);
      return this.run(fn, true, snap.context.visit);
    }
    return this.refuse(after.value as BreakerState);
  }

  /** Fleet scope: the machine gave a local slot; the trial runs only if the fleet grants one of its own. */
  private async claimThenRun<T>(fn: Guarded<T>, visit: number): Promise<T> {
    const granted = await (this.fleet as FleetLink).claimTrial();
    if (granted === false) {
      this.tell(TRIAL_RELEASE, visit);
      return this.refuse(this.state === 'closed' ? 'open' : this.state);
    }
    // Granted, or the store is out of reach and this process decides alone.
    return this.run(fn, true, visit);
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
      this.openStart = this.clock.now();
    }
  }

  // `mode` is only 'closed' when stopped, which is refused first.
  private refuse(mode: BreakerState): Promise<never> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    this.counts.rejections++;
    this.onRefused?.(this.name, mode as BreakerRefusal);
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
    const call = new TimedCall(this, trial, visit, controller, this.clocked ? this.clock.now() : 0);
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
    const started = this.clocked ? this.clock.now() : 0;
    let value: T;
    try {
      value = await fn(NEVER);
    } catch (error) {
      this.failed(error, trial, visit, started);
      throw error;
    }
    this.succeeded(trial, visit, started);
    return value;
  }

  /** @internal a call finished in time; `started` is when, if the calls are clocked. */
  succeeded(trial: boolean, visit: number, started: number): void {
    this.counts.inFlight--;
    this.counts.successes++;
    const ms = this.clocked ? this.clock.now() - started : 0;
    this.onCall?.(this.name, ms, 'success');
    if (this.measuresSlow && ms >= this.options.slowCallMs) {
      this.counts.slowCalls++;
      if (this.slowCounts) {
        this.slow(trial, visit);
        if (this.bulkhead) this.freed();
        return;
      }
    }
    if (this.bulkhead) this.freed();
    if (trial) {
      this.tell(TRIAL_SUCCESS, visit);
      this.fleet?.trialSucceeded();
      return;
    }
    // Visits only grow: a success of a later visit starts a new count, one of an earlier visit is stale.
    if (visit !== this.successesVisit) {
      if (visit < this.successesVisit) return;
      this.successesVisit = visit;
      this.successesBefore = 0;
    }
    this.successesBefore++;
    this.fleet?.success();
  }

  /** A slow success that counts: in closed a `W` in the window; as a trial, the provider is still unwell. */
  private slow(trial: boolean, visit: number): void {
    this.counted('W', trial, visit);
  }

  /** @internal a call threw or rejected; `started` is when, if the calls are clocked. */
  failed(error: unknown, trial: boolean, visit: number, started: number): void {
    this.counts.inFlight--;
    if (this.bulkhead) this.freed();
    const counts = this.countsAsFailure(error);
    this.onCall?.(this.name, this.clock.now() - started, counts ? 'failure' : 'ignored');
    if (!counts) {
      this.counts.ignoredErrors++;
      if (trial) {
        this.tell(TRIAL_RELEASE, visit);
        this.fleet?.trialReleased();
      }
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
    this.onCall?.(this.name, this.clock.now() - call.started, 'timeout');
    if (this.bulkhead) this.freed();
    this.countedFailure(call.trial, call.visit);
  }

  private countedFailure(trial: boolean, visit: number): void {
    this.counted('F', trial, visit);
  }

  /** A failure (`F`) or slow call (`W`) that counts, told with the successes not yet told. */
  private counted(kind: 'F' | 'W', trial: boolean, visit: number): void {
    if (trial) {
      this.trialFailed(visit);
      return;
    }
    let successesBefore = 0;
    if (visit === this.successesVisit) {
      successesBefore = this.successesBefore;
      this.successesBefore = 0;
    }
    if (this.fleet && this.inClosedVisit(visit)) this.fleet.record(kind);
    this.tell({ type: kind === 'F' ? 'call.failure' : 'call.slow', successesBefore }, visit);
  }

  /** A trial failed: the machine re-opens, and in fleet scope the fleet's next period begins. */
  private trialFailed(visit: number): void {
    const before = this.actor.getSnapshot().context.visit;
    this.tell(TRIAL_FAILURE, visit);
    const after = this.actor.getSnapshot();
    if (this.fleet && after.value === 'open' && after.context.visit !== before)
      this.fleet.reopened(after.context.openMs);
  }

  private inClosedVisit(visit: number): boolean {
    const snap = this.actor.getSnapshot();
    return snap.value === 'closed' && snap.context.visit === visit;
  }

  /** @internal the fleet opened at `at` and the machine was told: `retryAfterMs` counts from there. */
  openedAt(at: number): void {
    const snap = this.actor.getSnapshot();
    if (snap.value !== 'open') return;
    this.openedVisit = snap.context.visit;
    this.openStart = at;
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
