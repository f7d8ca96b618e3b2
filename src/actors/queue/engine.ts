import { randomUUID } from 'node:crypto';
import type { ActorRef, EventObject } from 'xstate';
import type { Clock } from '../../core/clock.js';
import { KeelError, LeaseLostError, TaskTimeoutError } from '../../core/errors.js';
import { describeError, encodeValue, jsonProblem } from '../../core/json.js';
import { backoffMs, type RetryPolicy } from '../../core/retry.js';
import { renewEveryMs } from '../../core/states.js';
import type { AttemptScope, TelemetryHooks } from '../../core/telemetry.js';
import { claimsOpen, isEnding, type QueueEvent, type QueueSnapshot } from '../../machines/queue.js';
import type { TaskEvent } from '../../machines/task.js';
import type { ClaimedTask, ClaimLimits, Outcome, ProgressUpdate, RateLimit, TaskStore } from '../../stores/store.js';
import type { IdlePoller, PollEntry } from './idlePoller.js';
import { nextTaskState } from './lifecycle.js';

/**
 * How far ahead a queue claims: beyond its free workers, only the tasks its
 * workers are measured to finish within this window. Fast handlers keep
 * claiming a batch per store call; handlers slower than this hold a lease only
 * on tasks they run.
 */
export const PREFETCH_WINDOW_MS = 50;

/** `task.progress(value)` writes at most once per this many ms per task; the latest value wins, the last is written at settle. */
export const PROGRESS_EVERY_MS = 250;

/**
 * The largest handler result kept with a succeeded task, in bytes of its JSON
 * text. A larger one is kept as `{ "keel.truncated": true, bytes }` instead.
 */
export const RESULT_LIMIT_BYTES = 64 * 1024;

/**
 * A rate limit is asked of the store over a slightly longer window than
 * configured: the store counts claims, the user counts handler starts, and a
 * start follows its claim by a varying few ms (the store round trip, the
 * event loop). The extra ms keep every window of starts within the limit.
 */
export function startSlackMs(perMs: number): number {
  return Math.min(100, Math.ceil(perMs / 5));
}

/** `limits` with each rate window widened by `startSlackMs`. */
function claimLimitsOf(limits: ClaimLimits | undefined): ClaimLimits | undefined {
  if (limits === undefined) return undefined;
  const widen = (r: RateLimit) => ({ max: r.max, perMs: r.perMs + startSlackMs(r.perMs) });
  return {
    ...limits,
    ...(limits.rateLimit && { rateLimit: widen(limits.rateLimit) }),
    ...(limits.groupRateLimit && { groupRateLimit: widen(limits.groupRateLimit) }),
  };
}

/**
 * How soon a queue whose limits held due tasks back looks again (at most its
 * `pollMs`): a slot freed by another process or a rate window moving on is
 * not announced.
 */
export const HELD_BACK_MS = 25;

/** What a handler receives. */
export interface Task<P = unknown> {
  id: string;
  payload: P;
  /** 1 on the first run. */
  attempt: number;
  key?: string;
  /**
   * Aborts when the lease is lost, the attempt times out, the task is
   * cancelled (reason: a `KeelError` with code `CANCELLED`) or the runtime stops.
   */
  signal: AbortSignal;
  /**
   * Reports progress (plain JSON), visible in `queue.get(id)` and published as
   * `task.<queue>.progress`. Throttled: at most one write per 250 ms, the
   * latest value wins and the last one is written before the task settles.
   */
  progress(value: unknown): void;
}

/** The part of a circuit breaker the queue uses. */
export interface GuardingBreaker {
  call<T>(fn: (signal: AbortSignal) => Promise<T> | T): Promise<T>;
}

/** What the bus carries on `task.<queue>.succeeded|retrying|dead`. */
export interface TaskEventPayload {
  queue: string;
  id: string;
  attempt: number;
  key?: string;
  payload: unknown;
  /** retrying and dead: what the handler threw. */
  error?: string;
  /** retrying: when the next attempt may start. */
  runAt?: number;
  /** progress: the value reported. */
  progress?: unknown;
}

/** Everything the engine needs, wired by `src/runtime/queues.ts`. */
export interface EngineOptions {
  queue: string;
  store: TaskStore;
  clock: Clock;
  handler: ((task: Task<any>) => unknown) | undefined;
  concurrency: number;
  retry: RetryPolicy;
  leaseMs: number;
  /** 0: an attempt may run forever (its lease is renewed while it runs). */
  timeoutMs: number;
  /** How often to look for work that another process made due or whose lease ran out. */
  pollMs: number;
  /** The most tasks claimed ahead of the workers in one store call (fewer for slow handlers: `PREFETCH_WINDOW_MS`). */
  batchSize: number;
  /** Fleet-wide limits every claim carries to the store (`rt.queue` options); undefined: none. */
  limits?: ClaimLimits | undefined;
  /** The runtime's shared poll timer; it looks for work made elsewhere while this queue waits. */
  poller: IdlePoller;
  /** The breaker that guards every attempt, resolved on first use. */
  breaker: (() => GuardingBreaker) | undefined;
  /** Its name: a `CircuitOpenError` from another breaker is an ordinary failure. */
  breakerName: string | undefined;
  publish: (topic: string, payload: TaskEventPayload) => void;
  report: (error: unknown, detail: string) => void;
  /** Metrics and traces of each attempt, when the runtime has them. */
  observe?: TelemetryHooks | undefined;
  /** A task ended here as succeeded or dead (the pruner's cue). */
  finished?: ((state: 'succeeded' | 'dead') => void) | undefined;
}

interface Held {
  claimed: ClaimedTask;
  state: 'buffered' | 'running' | 'settling' | 'lost' | 'released';
  /** Made on first read of `task.signal`: most handlers never read it, and an AbortSignal is costly to make and collect. */
  ac: AbortController | undefined;
  /** Set once the attempt is aborted, so a signal made later is born aborted. */
  abortReason: unknown;
  /** Ends the wait for the handler early (lease lost, stop, timeout). */
  cut: ((reason: unknown) => void) | undefined;
  payload: unknown;
  /** Until when the store last confirmed our lease: past it, another process may hold the task. */
  leaseUntil: number;
  /** Once the attempt ended: its outcome, waiting in the outbox. */
  outcome: Outcome | undefined;
  /** The latest progress not yet written (JSON text), and the value it encodes. */
  progress: { text: string; value: unknown } | undefined;
  /** When progress was last written (it is throttled per task). */
  progressAt: number;
  /** Armed while a progress value waits for its turn to be written. */
  progressTimer: unknown;
  /** The progress write in flight: a settle waits for it, or the row could move to history before it lands. */
  progressWriting: Promise<void> | undefined;
}

/** A stored payload that is not JSON (written by someone else): retrying cannot help. */
class UnreadablePayload extends KeelError {
  constructor(cause: unknown) {
    super('INVALID_PAYLOAD', `the stored payload is not JSON: ${describeError(cause)}`, { cause });
  }
}

function signalOf(h: Held): AbortSignal {
  if (!h.ac) {
    h.ac = new AbortController();
    if (h.abortReason !== undefined) h.ac.abort(h.abortReason);
  }
  return h.ac.signal;
}

function abort(h: Held, reason: unknown): void {
  if (h.abortReason !== undefined) return;
  h.abortReason = reason;
  h.ac?.abort(reason);
}

/** When an open breaker's refusal says it admits calls again; Infinity when it does not say (isolated, or until closed). */
function retryAfterOf(error: unknown): number {
  const after = Number((error as { retryAfterMs?: unknown }).retryAfterMs);
  return Number.isFinite(after) ? after : Number.POSITIVE_INFINITY;
}

/** A held task whose lease still counts (not given back, not known lost). */
function isLive(h: Held): boolean {
  return h.state === 'buffered' || h.state === 'running' || h.state === 'settling';
}

/** The queue actor as the engine sees it: it reads the mode and sends the gate's events. */
export type QueueActorRef = Pick<ActorRef<QueueSnapshot, QueueEvent, EventObject>, 'getSnapshot' | 'send'>;

/**
 * The effects of one queue: batched claims, the hand-off to worker loops,
 * handler runs, batched settles, lease renewal, wake-up timers and the
 * breaker gate's deadline. The queue actor (`queueActor.ts`) owns the mode
 * (see the contract in `src/machines/queue.ts`): the engine reads it from the
 * actor's snapshot and keeps no copy. The task machine decides every task's
 * next state (`nextTaskState`). No XState send happens per task: that would
 * cap throughput at ~450k events/s shared by everything else in the system.
 */
export class QueueEngine {
  /** Set by `attach` right after the actor is spawned (its logic wraps this engine, so it cannot exist first). */
  private actor: QueueActorRef | undefined;
  private readonly held = new Map<string, Held>();
  private buffer: Held[] = [];
  private bufferHead = 0;
  /** Tasks handed to a worker (from the hand-off on, so a claim round in between does not count them as free slots). */
  private running = 0;
  private waiters: Array<(h: Held | undefined) => void> = [];
  private outbox: Array<{ held: Held; outcome: Outcome }> = [];
  private flushing: Promise<void> | undefined;
  private flushScheduled = false;
  private pumpScheduled = false;
  private pumping = false;
  /** What each claim asks the store to enforce (`claimLimitsOf` the queue's limits). */
  private readonly claimLimits: ClaimLimits | undefined;
  /** `limits.globalConcurrency`: the tasks the whole fleet may run at once (undefined: no fleet limit). */
  private readonly fleet: number | undefined;
  private pumpAgain = false;
  private reapDue = true;
  private recovering: Promise<void> | undefined;
  private lastReap = Number.NEGATIVE_INFINITY;
  private wakeTimer: unknown;
  /** Counts `notifyChange` calls (see `changes`). */
  private changeCount = 0;
  private renewTimer: unknown;
  /** The deadline of `running.gated` (effect only: the state itself is the machine's). */
  private gateTimer: unknown;
  private changeWaiters: Array<() => void> = [];
  /** When the wake-up timer fires (undefined: none armed). */
  private wakeAt: number | undefined;
  /** Handlers cut loose (lease lost, timeout, stop) that have not returned yet: a new run of their task waits for them. */
  private readonly stragglers = new Map<string, Promise<void>>();
  /** Moving average of an attempt's duration (undefined until one finished): the prefetch is sized from it. */
  private avgRunMs: number | undefined;
  private readonly pollEntry: PollEntry;
  /** No held lease runs out before this (a lower bound): spares a look at every held task per claim round. */
  private earliestLease = Number.POSITIVE_INFINITY;
  private readonly tokenPrefix = randomUUID().slice(0, 8);
  private tokenSeq = 0;
  private breakerRef: GuardingBreaker | undefined;
  private readonly topics: { succeeded: string; retrying: string; dead: string; progress: string };

  constructor(private readonly o: EngineOptions) {
    this.claimLimits = claimLimitsOf(o.limits);
    this.fleet = o.limits?.globalConcurrency;
    this.topics = {
      succeeded: `task.${o.queue}.succeeded`,
      retrying: `task.${o.queue}.retrying`,
      dead: `task.${o.queue}.dead`,
      progress: `task.${o.queue}.progress`,
    };
    this.pollEntry = {
      queue: o.queue,
      pollMs: o.pollMs,
      lastLook: Number.NEGATIVE_INFINITY,
      wake: () => {
        this.reapDue = true;
        this.pump();
        this.notifyChange();
      },
      dueAt: (at) => this.wakeBy(at),
    };
  }

  /** Wires the queue actor whose snapshot is this engine's mode. */
  attach(actor: QueueActorRef): void {
    this.actor = actor;
  }

  private get snapshot(): QueueSnapshot {
    if (!this.actor) throw new KeelError('NOT_STARTED', `queue('${this.o.queue}'): the engine has no queue actor yet`);
    return this.actor.getSnapshot();
  }

  // ---- lifecycle (called by the queue actor's actions) ----

  /** At start: leases that ran out while no worker ran (a crash) are ended, paused or not. */
  recover(): void {
    const now = this.o.clock.now();
    this.lastReap = now;
    this.recovering = this.o.store
      .expireLeases(this.o.queue, now, this.o.retry.maxAttempts)
      .then(
        () => {},
        (error) => this.o.report(error, `queue('${this.o.queue}'): recovering expired leases failed`),
      )
      .finally(() => {
        this.recovering = undefined;
        this.notifyChange();
      });
  }

  /** Claims may start (entering `running.working`). */
  startClaims(): void {
    this.reapDue = true;
    this.o.poller.add(this.pollEntry);
    // XState runs entry actions before it commits the snapshot: claim once `running.working` is what the actor says.
    queueMicrotask(() => this.pump());
  }

  /** No new claims; tasks already claimed still run. */
  pauseClaims(): void {
    this.o.poller.remove(this.pollEntry);
    this.clearWake();
  }

  /** Entering `running.gated`: the breaker admits calls again after `retryAfterMs` (not finite: when it closes). */
  closeGate(retryAfterMs: number): void {
    this.openGate();
    this.o.poller.remove(this.pollEntry);
    this.clearWake();
    if (!Number.isFinite(retryAfterMs)) return;
    this.gateTimer = this.o.clock.setTimeout(
      () => {
        this.gateTimer = undefined;
        this.actor?.send({ type: 'queue.ungate' });
      },
      Math.max(0, retryAfterMs),
    );
  }

  /** Leaving `running.gated`: its deadline no longer applies. */
  openGate(): void {
    if (this.gateTimer !== undefined) this.o.clock.clearTimeout(this.gateTimer);
    this.gateTimer = undefined;
  }

  /** Stop: no new claims, idle workers leave, claimed-but-unstarted tasks go back to pending. */
  stopClaims(): void {
    this.o.poller.remove(this.pollEntry);
    this.clearWake();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
    const now = this.o.clock.now();
    for (let i = this.bufferHead; i < this.buffer.length; i++) this.release(this.buffer[i]!, now);
    this.buffer = [];
    this.bufferHead = 0;
    this.scheduleFlush();
  }

  /** Resolves once no handler runs and every outcome is stored. */
  async finishActive(): Promise<void> {
    // A claim or recovery still in flight must land first: what it claimed is released, not left leased.
    while (this.running > 0 || this.outbox.length > 0 || this.flushing || this.pumping || this.recovering) {
      if (this.running === 0 && !this.flushing && !this.pumping && !this.recovering) await this.flush();
      else await this.nextChange();
    }
    this.finish();
  }

  /** Grace is over: abort every running handler; its task will be released. */
  abortActive(): void {
    const now = this.o.clock.now();
    for (const h of this.held.values()) {
      if (h.state !== 'running') continue;
      this.release(h, now);
      const reason = new KeelError(
        'RUNTIME_STOPPED',
        `queue('${this.o.queue}'): the runtime stopped during the attempt`,
      );
      abort(h, reason);
      h.cut?.(reason);
    }
  }

  /** Gives a held task back to pending (the attempt is not spent) with the next flush. */
  private release(h: Held, now: number): void {
    h.state = 'released';
    this.outbox.push({ held: h, outcome: { kind: 'released', id: h.claimed.id, token: h.claimed.token, runAt: now } });
  }

  /** Stores the releases of `abortActive`. */
  async releaseActive(): Promise<void> {
    try {
      while (this.pumping || this.recovering) await this.nextChange();
      while (this.outbox.length > 0 || this.flushing) await this.flush(true);
    } finally {
      this.finish();
    }
  }

  private finish(): void {
    this.o.poller.remove(this.pollEntry);
    this.clearWake();
    if (this.renewTimer !== undefined) this.o.clock.clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.held.clear();
    this.notifyChange();
  }

  /** Something was enqueued or redriven: look for work. */
  notify(): void {
    this.pump();
    this.notifyChange();
  }

  /** True when this process holds no task, has nothing left to store and no claim on its way. */
  get localIdle(): boolean {
    // A claim in flight: between a settle and the next claim's answer nothing is held, yet the queue is not idle.
    return this.held.size === 0 && this.outbox.length === 0 && !this.flushing && !this.pumping;
  }

  /** The queue actor is stopping or stopped. */
  get isStopped(): boolean {
    return isEnding(this.snapshot);
  }

  /** Resolves at the next change: a settle, a claim round, a wake-up, a stop. */
  nextChange(): Promise<void> {
    return new Promise((resolve) => this.changeWaiters.push(resolve));
  }

  /**
   * How many changes there have been so far: a caller that awaits something
   * else between a look and `nextChange()` compares it, so a change in between is not slept through.
   */
  get changes(): number {
    return this.changeCount;
  }

  private notifyChange(): void {
    this.changeCount++;
    if (this.changeWaiters.length === 0) return;
    const waiters = this.changeWaiters;
    this.changeWaiters = [];
    for (const w of waiters) w();
  }

  // ---- workers ----

  /** One worker's loop: take a task, run it, until the queue stops. */
  async work(): Promise<void> {
    for (;;) {
      let h: Held | undefined | Promise<Held | undefined> = this.take();
      if (h instanceof Promise) h = await h;
      if (!h) return;
      await this.execute(h);
    }
  }

  private take(): Held | undefined | Promise<Held | undefined> {
    // No mode read per task: `stopClaims` empties the buffer and `accept` buffers nothing once the queue is ending.
    if (this.bufferHead < this.buffer.length) {
      const h = this.buffer[this.bufferHead]!;
      this.buffer[this.bufferHead++] = undefined as never;
      if (this.bufferHead === this.buffer.length) {
        this.buffer = [];
        this.bufferHead = 0;
      }
      if (this.buffer.length - this.bufferHead < this.o.concurrency) this.refill();
      this.running++;
      return h;
    }
    if (this.isStopped) return undefined;
    this.refill();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private async execute(h: Held): Promise<void> {
    const { claimed } = h;
    if (h.state !== 'buffered') {
      // Lost between the hand-off and now: not ours to run.
      this.running--;
      this.notifyChange();
      return;
    }
    h.state = 'running';
    let event: TaskEvent;
    let error: unknown;
    let timer: unknown;
    let started: number | undefined;
    let ranMs = 0;
    let scope: AttemptScope | undefined;
    let value: unknown;
    try {
      const straggler = this.stragglers.size > 0 ? this.stragglers.get(claimed.id) : undefined;
      if (straggler !== undefined) await this.waitOut(h, straggler);
      if (h.abortReason !== undefined) throw h.abortReason;
      try {
        h.payload = JSON.parse(claimed.payload);
      } catch (e) {
        throw new UnreadablePayload(e);
      }
      const task: Task = {
        id: claimed.id,
        payload: h.payload,
        attempt: claimed.attempt,
        ...(claimed.key !== undefined && { key: claimed.key }),
        get signal() {
          return signalOf(h);
        },
        progress: (value) => this.reportProgress(h, value),
      };
      started = this.o.clock.now();
      const observe = this.o.observe;
      if (observe?.taskAttempt !== undefined) {
        const dueAt = claimed.runAt;
        scope = observe.taskAttempt({
          queue: this.o.queue,
          id: claimed.id,
          attempt: claimed.attempt,
          // Another process's clock may run ahead of ours: a task never waited less than nothing.
          waitedMs: dueAt === undefined ? undefined : Math.max(0, started - dueAt),
          trace: claimed.trace,
        });
      }
      const run = scope === undefined ? this.invoke(h, task) : scope.run(() => this.invoke(h, task));
      if (this.o.timeoutMs > 0) {
        timer = this.o.clock.setTimeout(() => {
          const reason = new TaskTimeoutError(this.o.queue, claimed.id, this.o.timeoutMs);
          abort(h, reason);
          h.cut?.(reason);
        }, this.o.timeoutMs);
      }
      await new Promise<void>((resolve, reject) => {
        h.cut = (reason) => {
          this.straggle(claimed.id, run);
          reject(reason);
        };
        run.then((v) => {
          value = v;
          resolve();
        }, reject);
      });
      event = { type: 'succeed' };
    } catch (e) {
      error = e;
      event = this.classify(e, claimed.attempt);
    } finally {
      if (timer !== undefined) this.o.clock.clearTimeout(timer);
      h.cut = undefined;
      this.running--;
      if (started !== undefined) {
        ranMs = this.o.clock.now() - started;
        this.measure(ranMs);
      }
    }
    // Lost or released tasks are no longer ours to settle.
    if (h.state !== 'running') {
      scope?.end('released', ranMs, error);
      this.notifyChange();
      return;
    }
    h.state = 'settling';
    h.outcome = this.outcomeOf(h, event, error, value);
    // A deferral ends the attempt as a release does: no attempt spent.
    scope?.end(h.outcome.kind === 'deferred' ? 'released' : h.outcome.kind, ranMs, error);
    this.outbox.push({ held: h, outcome: h.outcome });
    this.scheduleFlush();
    // Its fleet slot is free now (the claim is told), not only once the settle lands.
    if (this.fleet !== undefined) this.schedulePump();
  }

  /**
   * A worker asks for more work. Under a fleet limit a macrotask later: the handlers returning in this turn free
   * their slots for one claim, and the settles scheduled meanwhile get their turn (with a store that answers at
   * once, claims chained through microtasks would starve them).
   */
  private refill(): void {
    if (this.fleet !== undefined) this.schedulePump();
    else this.pump();
  }

  /** A pump a macrotask later: every handler that returned in this turn frees its slot for one claim. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * An earlier run of this task in this process was cut loose (its signal
   * aborted: lease lost, timeout) and has not returned. The new run waits for
   * it, so a handler that heeds its signal never runs twice at once here; one
   * that ignores it gets `timeoutMs` (or, without one, `leaseMs`), after which
   * the task runs anyway rather than hang behind it for ever.
   */
  private async waitOut(h: Held, straggler: Promise<void>): Promise<void> {
    let timer: unknown;
    try {
      await new Promise<void>((resolve, reject) => {
        h.cut = reject;
        void straggler.then(resolve);
        timer = this.o.clock.setTimeout(() => resolve(), this.o.timeoutMs > 0 ? this.o.timeoutMs : this.o.leaseMs);
      });
    } finally {
      this.o.clock.clearTimeout(timer);
      h.cut = undefined;
    }
  }

  /** Keeps a handler that was cut loose in mind until it returns. */
  private straggle(id: string, run: Promise<unknown>): void {
    const done = run.then(
      () => {},
      () => {},
    );
    this.stragglers.set(id, done);
    void done.then(() => {
      if (this.stragglers.get(id) === done) this.stragglers.delete(id);
    });
  }

  /** One attempt took `ms`: the prefetch follows the handlers' pace. */
  private measure(ms: number): void {
    this.avgRunMs = this.avgRunMs === undefined ? ms : this.avgRunMs * 0.8 + ms * 0.2;
  }

  /**
   * Tasks to claim beyond the free workers: as many as the workers finish
   * within `PREFETCH_WINDOW_MS` at the measured pace, at most `batchSize`;
   * none before the first attempt was measured.
   */
  private get prefetch(): number {
    // Under a rate limit a claim is a start: a task must not wait in the buffer, or starts would bunch up.
    if (this.o.limits?.rateLimit || this.o.limits?.groupRateLimit) return 0;
    const avg = this.avgRunMs;
    if (avg === undefined) return 0;
    if (avg <= 0) return this.o.batchSize;
    return Math.min(this.o.batchSize, Math.floor((this.o.concurrency * PREFETCH_WINDOW_MS) / avg));
  }

  private invoke(h: Held, task: Task): Promise<unknown> {
    const handler = this.o.handler!;
    if (!this.o.breaker) return new Promise((resolve) => resolve(handler(task)));
    this.breakerRef ??= this.o.breaker();
    return this.breakerRef.call((callSignal) => {
      // Lazy like `task.signal` (a spread would read it): the handler's signal also aborts on the call's timeout.
      let signal: AbortSignal | undefined;
      return handler({
        id: task.id,
        payload: task.payload,
        attempt: task.attempt,
        ...(task.key !== undefined && { key: task.key }),
        get signal() {
          signal ??= AbortSignal.any([signalOf(h), callSignal]);
          return signal;
        },
        progress: task.progress,
      });
    });
  }

  private classify(error: unknown, attempt: number): TaskEvent {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'NON_RETRYABLE' || error instanceof UnreadablePayload) return { type: 'reject' };
    if (code === 'CIRCUIT_OPEN' && this.o.breakerName !== undefined && this.isOurBreaker(error)) {
      // Not finite (isolated, or open until it closes): due at once, the queue's gate waits instead.
      const after = retryAfterOf(error);
      return { type: 'defer', delayMs: Number.isFinite(after) && after > 0 ? after : 0 };
    }
    return { type: 'fail', delayMs: backoffMs(this.o.retry, attempt) };
  }

  private isOurBreaker(error: unknown): boolean {
    const b = (error as { breaker?: unknown }).breaker;
    if (b === undefined) return true;
    if (typeof b === 'string') return b === this.o.breakerName;
    return (b as { name?: unknown })?.name === this.o.breakerName;
  }

  private outcomeOf(h: Held, event: TaskEvent, error: unknown, value: unknown): Outcome {
    const { id, token, attempt } = h.claimed;
    const to = nextTaskState('active', event, attempt, this.o.retry.maxAttempts);
    const now = this.o.clock.now();
    switch (to) {
      case 'succeeded': {
        const result = resultText(value);
        return result === undefined ? { kind: 'succeeded', id, token } : { kind: 'succeeded', id, token, result };
      }
      case 'retrying': {
        if (event.type === 'defer') {
          // Deferred by an open breaker: wait out its retryAfterMs, spend no attempt, keep the group's slot.
          // Not per task in the normal run: only a refusal by our own breaker gets here.
          this.actor?.send({ type: 'queue.gate', retryAfterMs: retryAfterOf(error) });
          return { kind: 'deferred', id, token, runAt: now + (event.delayMs ?? 0) };
        }
        return {
          kind: 'retrying',
          id,
          token,
          runAt: now + (event.type === 'fail' ? event.delayMs : 0),
          error: describeError(error),
        };
      }
      default:
        return { kind: 'dead', id, token, error: describeError(error) };
    }
  }

  // ---- claims ----

  /** Asked once per claim round, of the machine. */
  private get canClaim(): boolean {
    return this.o.handler !== undefined && this.o.concurrency > 0 && claimsOpen(this.snapshot);
  }

  /** Starts a claim round unless one runs (then it runs once more). */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    if (!this.canClaim) return;
    this.pumping = true;
    void this.claimRounds();
  }

  private async claimRounds(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        while (this.canClaim) {
          const queued = this.buffer.length - this.bufferHead;
          const prefetch = this.prefetch;
          // Claim again once half the window is left, so the workers have work while the claim is on its way.
          if (queued >= this.o.concurrency + (prefetch >> 1) && this.waiters.length === 0) break;
          let limit = this.o.concurrency + prefetch - queued - this.running;
          // Our leased tasks hold fleet slots in the store, except those whose handlers returned (the claim is told
          // of them, so it need not wait for their settle): past the rest a claim comes back empty, so wait for a
          // handler to return or a settle (both pump) instead of asking for nothing.
          let finished: { id: string; token: string }[] | undefined;
          if (this.fleet !== undefined) {
            finished = this.finishedLeases();
            limit = Math.min(limit, this.fleet - (this.held.size - finished.length));
          }
          if (limit <= 0) break;
          let now = this.o.clock.now();
          this.pollEntry.lastLook = now;
          if (this.reapDue || now - this.lastReap >= this.o.pollMs) {
            this.reapDue = false;
            // Our own leases first: after a stall they may have run out in the store without being lost to anyone.
            if (await this.keepOwnLeases(now)) now = this.o.clock.now();
            this.lastReap = now;
            await this.o.store.expireLeases(this.o.queue, now, this.o.retry.maxAttempts);
            if (!this.canClaim) break;
          } else if (this.hasStaleLease(now)) {
            // A lease past its time may have been reaped by another process: learn it (and abort) before claiming.
            await this.keepOwnLeases(now);
            now = this.o.clock.now();
          }
          const token = `${this.tokenPrefix}-${++this.tokenSeq}`;
          const tasks = await this.o.store.claim(this.o.queue, {
            limit,
            now,
            leaseUntil: now + this.o.leaseMs,
            token,
            ...(this.claimLimits !== undefined && { limits: this.claimLimits }),
            ...(finished !== undefined && finished.length > 0 && { finished }),
          });
          const ending = tasks.length > 0 && this.isStopped;
          for (const claimed of tasks) this.accept(claimed, now + this.o.leaseMs, ending);
          if (tasks.length > 0) this.armRenew();
          if (tasks.length < limit) {
            // Cut short by a limit with a settle to come (tasks just claimed, outcomes waiting): that settle claims
            // again (flush pumps), and a slot freed elsewhere is looked for shortly. Asking the store when work
            // falls due would be one more round trip per claim all through a limited queue's drain.
            const settleComing = tasks.length > 0 || this.outbox.length > 0 || this.flushing !== undefined;
            if (settleComing && this.o.limits !== undefined) this.wakeBy(now + Math.min(this.o.pollMs, HELD_BACK_MS));
            else await this.armWake();
            break;
          }
        }
      } while (this.pumpAgain && this.canClaim);
    } catch (error) {
      this.o.report(error, `queue('${this.o.queue}'): claiming failed; retrying in ${this.o.pollMs} ms`);
      this.setWake(this.o.pollMs);
    } finally {
      // Synchronously after the last check: a pump() asked for in between is not lost.
      this.pumping = false;
      const again = this.pumpAgain;
      this.pumpAgain = false;
      if (again) this.pump();
      this.notifyChange();
    }
  }

  /** Our leased tasks whose handlers have returned, outcomes not yet stored: they use no fleet slot. */
  private finishedLeases(): { id: string; token: string }[] {
    const out: { id: string; token: string }[] = [];
    for (const h of this.held.values())
      if (h.state === 'settling') out.push({ id: h.claimed.id, token: h.claimed.token });
    return out;
  }

  private accept(claimed: ClaimedTask, leaseUntil: number, ending: boolean): void {
    const earlier = this.held.get(claimed.id);
    if (earlier !== undefined) {
      // This process held the task under an older token that someone reaped meanwhile: that run is over.
      this.loseLease(claimed.id);
      if (earlier.outcome?.kind === 'succeeded') {
        // It already succeeded here (its settle lost the race): store that, do not run it again.
        const outcome: Outcome = { kind: 'succeeded', id: claimed.id, token: claimed.token };
        const h = this.heldOf(claimed, leaseUntil);
        h.state = 'settling';
        h.outcome = outcome;
        h.payload = earlier.payload;
        this.held.set(claimed.id, h);
        if (leaseUntil < this.earliestLease) this.earliestLease = leaseUntil;
        this.outbox.push({ held: h, outcome });
        this.scheduleFlush();
        return;
      }
    }
    const h = this.heldOf(claimed, leaseUntil);
    this.held.set(claimed.id, h);
    if (leaseUntil < this.earliestLease) this.earliestLease = leaseUntil;
    if (ending) {
      // Claimed while a stop began: give it straight back.
      this.release(h, this.o.clock.now());
      this.scheduleFlush();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      this.running++;
      waiter(h);
    } else this.buffer.push(h);
  }

  private heldOf(claimed: ClaimedTask, leaseUntil: number): Held {
    return {
      claimed,
      state: 'buffered',
      ac: undefined,
      abortReason: undefined,
      cut: undefined,
      payload: undefined,
      leaseUntil,
      outcome: undefined,
      progress: undefined,
      progressAt: Number.NEGATIVE_INFINITY,
      progressTimer: undefined,
      progressWriting: undefined,
    };
  }

  // ---- progress ----

  /** `task.progress(value)`: kept as the latest value and written when its turn comes (`PROGRESS_EVERY_MS`). */
  private reportProgress(h: Held, value: unknown): void {
    const text = encodeValue(value, `queue('${this.o.queue}') task.progress`, 'value');
    if (h.state !== 'running') return;
    h.progress = { text, value };
    if (h.progressTimer !== undefined) return;
    const wait = h.progressAt + PROGRESS_EVERY_MS - this.o.clock.now();
    if (wait <= 0) {
      this.startProgressWrite(h);
      return;
    }
    h.progressTimer = this.o.clock.setTimeout(() => {
      h.progressTimer = undefined;
      if (h.state === 'running') this.startProgressWrite(h);
    }, wait);
  }

  /** Writes `h`'s progress now, remembered as in flight until it lands. */
  private startProgressWrite(h: Held): void {
    const writing = this.writeProgress([h]).finally(() => {
      if (h.progressWriting === writing) h.progressWriting = undefined;
    });
    h.progressWriting = writing;
  }

  /** Writes the progress values waiting in `hs` (one store call) and publishes those the store took. */
  private async writeProgress(hs: Held[]): Promise<void> {
    const updates: ProgressUpdate[] = [];
    const values: unknown[] = [];
    const now = this.o.clock.now();
    for (const h of hs) {
      if (h.progressTimer !== undefined) this.o.clock.clearTimeout(h.progressTimer);
      h.progressTimer = undefined;
      if (h.progress === undefined) continue;
      updates.push({ id: h.claimed.id, token: h.claimed.token, progress: h.progress.text });
      values.push(h.progress.value);
      h.progress = undefined;
      h.progressAt = now;
    }
    if (updates.length === 0) return;
    let ok: boolean[];
    try {
      ok = await this.o.store.progress(this.o.queue, updates, now);
    } catch (error) {
      this.o.report(error, `queue('${this.o.queue}'): storing task progress failed`);
      return;
    }
    updates.forEach((u, i) => {
      if (!ok[i]) return;
      const h = hs.find((x) => x.claimed.id === u.id);
      this.publish('progress', {
        queue: this.o.queue,
        id: u.id,
        attempt: h?.claimed.attempt ?? 0,
        payload: h?.payload,
        ...(h?.claimed.key !== undefined && { key: h.claimed.key }),
        progress: values[i],
      });
    });
  }

  // ---- cancel ----

  /**
   * A task of this queue was cancelled (here, or in another process that said
   * so): if this process holds it, its run ends now (its signal aborts with
   * `CANCELLED`) and it is not settled.
   */
  cancelled(id: string): void {
    const h = this.held.get(id);
    if (!h) return;
    this.loseLease(id, new KeelError('CANCELLED', `queue('${this.o.queue}'): task ${id} was cancelled`));
  }

  /** Leases the store says are gone: cancelled ones abort with `CANCELLED`, the others with `LEASE_LOST`. */
  private async loseLeases(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const now = this.o.clock.now();
    const states = await Promise.all(
      ids.map((id) =>
        this.o.store.get(this.o.queue, id, now).then(
          (r) => r?.state,
          () => undefined,
        ),
      ),
    );
    ids.forEach((id, i) => {
      if (states[i] === 'cancelled') this.cancelled(id);
      else this.loseLease(id);
    });
  }

  /**
   * Sleeps until the next task falls due or a lease may run out. Work made
   * elsewhere (other processes) is looked for by the runtime's shared poller
   * (`idlePoller.ts`), not by a timer of each queue.
   */
  private async armWake(): Promise<void> {
    const next = await this.o.store.nextDueAt(this.o.queue);
    if (next === undefined) return;
    const now = this.o.clock.now();
    // Due work a limit held back (it stays pending): look again shortly, not at once.
    if (this.o.limits !== undefined && next <= now) this.wakeBy(now + Math.min(this.o.pollMs, HELD_BACK_MS));
    else this.wakeBy(next);
  }

  /** Makes sure a claim round runs by `at` (an earlier wake-up stays). */
  private wakeBy(at: number): void {
    if (this.wakeAt !== undefined && this.wakeAt <= at) return;
    this.setWake(Math.max(0, at - this.o.clock.now()));
  }

  private setWake(ms: number): void {
    this.clearWake();
    if (!claimsOpen(this.snapshot)) return;
    this.wakeAt = this.o.clock.now() + ms;
    this.wakeTimer = this.o.clock.setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = undefined;
      this.reapDue = true;
      this.pump();
      this.notifyChange();
    }, ms);
  }

  private clearWake(): void {
    if (this.wakeTimer !== undefined) this.o.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAt = undefined;
  }

  // ---- leases ----

  private armRenew(): void {
    // `finish` empties `held` for good, so no renewal outlives the stop.
    if (this.renewTimer !== undefined || this.held.size === 0) return;
    this.renewTimer = this.o.clock.setTimeout(() => {
      this.renewTimer = undefined;
      void this.renew();
    }, renewEveryMs(this.o.leaseMs));
  }

  private async renew(): Promise<void> {
    const leases: { id: string; token: string }[] = [];
    for (const h of this.held.values()) {
      if (h.state !== 'lost' && h.state !== 'released') leases.push({ id: h.claimed.id, token: h.claimed.token });
    }
    if (leases.length > 0) {
      const now = this.o.clock.now();
      try {
        const lost = await this.o.store.renew(this.o.queue, leases, now + this.o.leaseMs, now);
        await this.loseLeases(lost);
        const gone = new Set(lost);
        for (const { id } of leases) {
          const h = this.held.get(id);
          if (h && !gone.has(id)) h.leaseUntil = now + this.o.leaseMs;
        }
      } catch (error) {
        this.o.report(error, `queue('${this.o.queue}'): renewing leases failed`);
        // The store could not confirm the leases (e.g. the connection dropped). One that runs out before the
        // next try may be claimed by another process: stop its attempt here rather than run it twice at once.
        const after = this.o.clock.now() + renewEveryMs(this.o.leaseMs);
        for (const { id } of leases) {
          const h = this.held.get(id);
          if (h && h.state !== 'settling' && h.leaseUntil <= after) this.loseLease(id);
        }
      }
    }
    this.armRenew();
  }

  /** True when a lease this process holds is past the time the store last confirmed. */
  private hasStaleLease(now: number): boolean {
    if (now < this.earliestLease) return false;
    let earliest = Number.POSITIVE_INFINITY;
    for (const h of this.held.values()) if (isLive(h) && h.leaseUntil < earliest) earliest = h.leaseUntil;
    this.earliestLease = earliest;
    return earliest <= now;
  }

  /**
   * Before leases are reaped or more tasks claimed: stores the outcomes this
   * process already has, then renews its leases that are past their time (an
   * event-loop stall held up the renew timer). A lease the store says is gone
   * aborts its run here, before any claim could hand the task out again.
   * True when it waited on the store.
   */
  private async keepOwnLeases(now: number): Promise<boolean> {
    if (!this.hasStaleLease(now)) return false;
    if (this.outbox.length > 0 || this.flushing) await this.flush();
    const stale: { id: string; token: string }[] = [];
    for (const h of this.held.values()) {
      if (h.leaseUntil <= now && isLive(h)) stale.push({ id: h.claimed.id, token: h.claimed.token });
    }
    if (stale.length === 0) return true;
    const at = this.o.clock.now();
    const lostIds = await this.o.store.renew(this.o.queue, stale, at + this.o.leaseMs, at);
    const lost = new Set(lostIds);
    const gone: string[] = [];
    for (const { id, token } of stale) {
      const h = this.held.get(id);
      if (!h || h.claimed.token !== token) continue;
      if (lost.has(id)) gone.push(id);
      else h.leaseUntil = at + this.o.leaseMs;
    }
    await this.loseLeases(gone);
    this.earliestLease = 0;
    return true;
  }

  private loseLease(id: string, why?: KeelError): void {
    const h = this.held.get(id);
    if (!h || h.state === 'released') return;
    const reason = why ?? new LeaseLostError(this.o.queue, id);
    if (h.progressTimer !== undefined) this.o.clock.clearTimeout(h.progressTimer);
    h.progressTimer = undefined;
    h.progress = undefined;
    if (h.state === 'buffered') {
      const i = this.buffer.indexOf(h, this.bufferHead);
      if (i >= 0) this.buffer.splice(i, 1);
    }
    if (h.state === 'settling') {
      // The settle will find the token gone; nothing else to do.
      return;
    }
    h.state = 'lost';
    this.held.delete(id);
    abort(h, reason);
    h.cut?.(reason);
    this.notifyChange();
  }

  // ---- settles ----

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A macrotask later, so every handler that finished in this turn shares one store transaction.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private flush(rethrow = false): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.outbox.length === 0) return Promise.resolve();
    const run = (async () => {
      let failure: unknown;
      while (this.outbox.length > 0) {
        const batch = this.outbox;
        this.outbox = [];
        let ok: boolean[];
        // Progress writes in flight land first, then progress still waiting for its turn is written: the
        // settled task keeps its last value (a settle racing a write moved the row to history before it).
        const writing = batch.map((b) => b.held.progressWriting).filter((w) => w !== undefined);
        if (writing.length > 0) await Promise.all(writing);
        const unwritten = batch.filter((b) => b.held.progress !== undefined).map((b) => b.held);
        if (unwritten.length > 0) await this.writeProgress(unwritten);
        try {
          ok = await this.o.store.settle(
            this.o.queue,
            batch.map((b) => b.outcome),
            this.o.clock.now(),
          );
        } catch (error) {
          // The tasks stay active in the store; their leases run out and they are handed out again.
          failure ??= error;
          this.o.report(error, `queue('${this.o.queue}'): storing ${batch.length} task outcome(s) failed`);
          ok = batch.map(() => false);
        }
        for (let i = 0; i < batch.length; i++) {
          const { held, outcome } = batch[i]!;
          if (this.held.get(outcome.id) === held) this.held.delete(outcome.id);
          if (ok[i]) this.announce(held, outcome);
        }
      }
      if (failure !== undefined && rethrow) throw failure;
    })();
    this.flushing = run.finally(() => {
      this.flushing = undefined;
      this.notifyChange();
      if (this.buffer.length - this.bufferHead < this.o.concurrency) this.pump();
    });
    return this.flushing;
  }

  private announce(h: Held, outcome: Outcome): void {
    if (outcome.kind === 'released' || outcome.kind === 'deferred') return;
    if (outcome.kind !== 'retrying') this.o.finished?.(outcome.kind);
    const { claimed } = h;
    const payload: TaskEventPayload = {
      queue: this.o.queue,
      id: claimed.id,
      attempt: claimed.attempt,
      payload: h.payload,
      ...(claimed.key !== undefined && { key: claimed.key }),
      ...(outcome.kind !== 'succeeded' && { error: outcome.error }),
      ...(outcome.kind === 'retrying' && { runAt: outcome.runAt }),
    };
    this.publish(outcome.kind, payload);
  }

  private publish(kind: keyof QueueEngine['topics'], payload: TaskEventPayload): void {
    try {
      this.o.publish(this.topics[kind], payload);
    } catch (error) {
      this.o.report(error, `queue('${this.o.queue}'): publishing task.${this.o.queue}.${kind} failed`);
    }
  }
}

/**
 * A handler's return value as stored with its succeeded task: its JSON text,
 * nothing for `undefined` or a value JSON cannot carry faithfully (a class
 * instance, a function), and a marker for one over `RESULT_LIMIT_BYTES`.
 */
export function resultText(value: unknown): string | undefined {
  if (value === undefined || jsonProblem(value, 'result') !== undefined) return undefined;
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text, 'utf8');
  return bytes > RESULT_LIMIT_BYTES ? JSON.stringify({ 'keel.truncated': true, bytes }) : text;
}
