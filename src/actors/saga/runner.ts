import { randomUUID } from 'node:crypto';
import { type Actor, createActor, fromPromise } from 'xstate';
import { KeelError } from '../../core/errors.js';
import { encodeJson, errorData } from '../../core/json.js';
import { OptionReader } from '../../core/options.js';
import { type AttemptState, runAttempts } from '../../core/retry.js';
import { isFinalSagaStatus, renewEveryMs } from '../../core/states.js';
import {
  createSagaMachine,
  RESULT_REFUSED,
  type SagaContext,
  type SagaInput,
  type SagaMachine,
  type SagaStepEvent,
  type StepRun,
  sagaPayloads,
} from '../../machines/saga.js';
import {
  hasSharedSagas,
  type SagaRecord,
  type SagaRecordStatus,
  type SagaStore,
  type SharedSagas,
} from '../../stores/sagaStore.js';
import type { Store } from '../../stores/store.js';
import type { Host } from '../host.js';
import type { ResolvedSaga, ResolvedStep, SagaStep, StepContext } from './definition.js';
import { type SagaEffect, SagaEngine, type SagaState, type SagaStep as Transition } from './engine.js';
import { resultOf, type SagaResult } from './result.js';
import { keepResult } from './stepResult.js';
import { afterStoreFault, pause } from './storeRetry.js';

/** Options of one `execute`. */
export interface ExecuteOptions {
  /** The saga's id: an execute with an id that finished returns the stored result; one that runs joins it. */
  id?: string;
}

interface Flight {
  id: string;
  promise: Promise<SagaResult<any>>;
  resolve(r: SagaResult<any>): void;
  reject(e: unknown): void;
  /** When the runtime is inspected: the actor that shows this saga's state in the system; it performs nothing. */
  mirror: Actor<SagaMachine> | undefined;
  /** Where the machine has the saga now (undefined until it starts). */
  state: SagaState | undefined;
  /** Aborts the step in flight and any store wait when the saga is interrupted (replaced when it starts waiting on another runtime). */
  controller: AbortController;
  /** The store's last failure while this saga waits for it to answer (the saga is paused), else undefined. */
  fault: unknown;
  /** Attempts of the step in progress; carried over from the store on resume. */
  attempts: AttemptState;
  createdAt: number;
  /**
   * The checkpoint being written: `stop()` lets it land (or fail). The
   * runner awaits every checkpoint before it goes on, so one saga's writes are
   * never concurrent and a later one never lands before an earlier one.
   */
  writes: Promise<void>;
  /** False while it waits for a saga another runtime runs (execute of its id): nothing of it to renew here. */
  owned: boolean;
}

/** What a saga runner needs of its runtime. */
export type SagaHost = Pick<
  Host,
  'store' | 'clock' | 'publish' | 'report' | 'whenRunning' | 'inspected' | 'system' | 'observe'
>;

/** The store methods a saga needs. */
type Sagas = Store & SagaStore;

/**
 * Runs the sagas of one definition along the generated machine, one way for
 * every saga: the engine (XState's `transition`, memoised) says where each
 * step's outcome leads and what to do on the way; the runner does it (runs or
 * undoes the invoked step with its retries and timeout, publishes) and writes
 * the machine's state and context to the store before each step starts, so a
 * crash resumes at the step in flight. When the runtime is inspected, each
 * saga also gets a mirror actor in the runtime's system, fed the same events.
 */
export class SagaRunner<TSteps extends readonly SagaStep[]> {
  /** The generated XState machine (as the inspector shows it). */
  readonly machine: SagaMachine;
  /** The machine as the mirror actors run it: steps that do nothing, no publishing (the runner does both). */
  private readonly mirrorLogic: SagaMachine;
  private readonly engine: SagaEngine;
  private readonly flights = new Map<string, Flight>();
  private readonly steps: Map<string, ResolvedStep>;
  /** With a store shared by runtimes: renews this runtime's sagas and adopts the ones whose owner died. */
  private ownershipTimer: unknown;
  private stopped = false;

  constructor(
    private readonly rt: SagaHost,
    private readonly def: ResolvedSaga,
  ) {
    this.steps = new Map(def.steps.map((s) => [s.name, s]));
    this.machine = createSagaMachine(
      def.name,
      def.steps.map((s) => ({
        name: s.name,
        compensable: s.compensate !== undefined,
        undoOnFailure: s.compensateOnFailure,
      })),
    );
    const silent = Object.fromEntries(Object.keys(sagaPayloads).map((name) => [name, () => {}]));
    // The mirror's steps never settle on their own: the runner sends it their outcome.
    const pending = fromPromise<unknown, StepRun>(() => new Promise(() => {}));
    this.mirrorLogic = this.machine.provide({
      actors: { runStep: pending, compensateStep: pending },
      actions: silent as never,
    });
    this.engine = new SagaEngine(this.machine);
  }

  /** The machine state of the saga `id` while it runs in this runtime (`{ running: 'createOrder' }`), else undefined. */
  stateOf(id: string): unknown {
    return this.flights.get(id)?.state?.value;
  }

  /** How many sagas of this definition run in this runtime now. */
  get running(): number {
    return this.flights.size;
  }

  /** Runs a saga to its end; see `SagaResult`. */
  execute(input: unknown, options?: ExecuteOptions): Promise<SagaResult<TSteps>> {
    const what = `saga('${this.def.name}').execute`;
    let id: string;
    try {
      const o = new OptionReader(what, options === undefined ? {} : options, ['id'], 'an execute option');
      id = o.string('id') ?? randomUUID();
    } catch (error) {
      return Promise.reject(error);
    }
    const joined = this.flights.get(id);
    if (joined) return joined.promise as Promise<SagaResult<TSteps>>;
    try {
      encodeJson(input, `${what}: input`);
    } catch (error) {
      return Promise.reject(error);
    }
    const flight = this.newFlight(id);
    void (async () => {
      await this.rt.whenRunning(what);
      const stored = await this.stored(flight, () => this.store.loadSaga(this.def.name, id));
      if (stored && isFinalSagaStatus(stored.status)) {
        this.settle(flight, stored.status, JSON.parse(stored.context) as SagaContext);
        return;
      }
      if (stored) {
        if (!hasSharedSagas(this.store)) this.resumeFlight(flight, stored);
        else await this.waitOrAdopt(flight);
        return;
      }
      const start: SagaInput = { sagaId: id, input };
      if (this.rt.inspected) this.mirror(flight, { input: start });
      void this.drive(flight, this.engine.start(start));
    })().catch((error) => this.fail(flight, error));
    return flight.promise as Promise<SagaResult<TSteps>>;
  }

  /**
   * Resumes every unfinished saga of this definition found in the store. With
   * a store shared by several runtimes, only those no live runtime owns, and
   * from then on it checks every third of `sagaLeaseMs` for sagas whose owner died.
   */
  async resumeAll(): Promise<void> {
    const s = this.store;
    if (hasSharedSagas(s)) {
      await this.adopt(s);
      this.armOwnership(s);
      return;
    }
    this.resumeRecords(await s.unfinishedSagas(this.def.name));
  }

  private resumeRecords(records: readonly SagaRecord[]): void {
    for (const record of records) {
      if (this.flights.has(record.id)) continue;
      const flight = this.newFlight(record.id);
      // Nobody awaits a resumed saga until someone calls execute with its id.
      flight.promise.catch(() => {});
      try {
        this.resumeFlight(flight, record);
      } catch (error) {
        this.fail(flight, error);
        this.rt.report(error, `saga '${this.def.name}' could not resume '${record.id}'`);
      }
    }
  }

  /** Takes the sagas nobody owns any more and runs them here. */
  private async adopt(s: SharedSagas): Promise<void> {
    const records = await s.adoptSagas(this.def.name, this.rt.clock.now());
    if (!this.stopped) this.resumeRecords(records);
  }

  private armOwnership(s: SharedSagas): void {
    if (this.stopped) return;
    this.ownershipTimer = this.rt.clock.setTimeout(() => {
      this.ownershipTimer = undefined;
      void this.keepOwnership(s).finally(() => this.armOwnership(s));
    }, renewEveryMs(s.sagaLeaseMs));
  }

  /** Renews the sagas running here (interrupting those another runtime took), then adopts orphans. */
  private async keepOwnership(s: SharedSagas): Promise<void> {
    try {
      const ids = [...this.flights.values()].filter((f) => f.owned).map((f) => f.id);
      const lost = await s.renewSagas(this.def.name, ids, this.rt.clock.now());
      for (const id of lost) {
        const flight = this.flights.get(id);
        if (!flight) continue;
        const stored = await this.store.loadSaga(this.def.name, id);
        // Not saved yet (its first save claims it), or it just finished here.
        if (!stored || isFinalSagaStatus(stored.status) || this.flights.get(id) !== flight) continue;
        this.join(
          flight,
          new KeelError('SAGA_NOT_OWNED', `saga '${this.def.name}' '${id}' is now run by another runtime`),
        );
      }
      await this.adopt(s);
    } catch (error) {
      this.rt.report(error, `saga '${this.def.name}': checking saga ownership failed`);
    }
  }

  /**
   * The saga is another runtime's (its `execute` found it stored unfinished,
   * or this runtime lost it): stop running it here and wait until it finishes
   * there, then resolve with its stored result; take it over if its owner dies.
   */
  private join(flight: Flight, reason: KeelError): void {
    this.halt(flight, reason);
    flight.controller = new AbortController();
    flight.state = undefined;
    // The store answered (with the verdict that the saga is another's): this saga is not paused on it.
    flight.fault = undefined;
    void this.waitOrAdopt(flight).catch((error) => this.fail(flight, error));
  }

  /** Runs the stored, unfinished saga here when no live runtime owns it; else waits for its end elsewhere. */
  private async waitOrAdopt(flight: Flight): Promise<void> {
    const s = this.store as Sagas & SharedSagas;
    flight.owned = false;
    for (;;) {
      const [mine] = await this.stored(flight, () => s.adoptSagas(this.def.name, this.rt.clock.now(), flight.id));
      if (mine) {
        flight.owned = true;
        this.resumeFlight(flight, mine);
        return;
      }
      const now = await this.stored(flight, () => s.loadSaga(this.def.name, flight.id));
      if (now && isFinalSagaStatus(now.status)) {
        this.settle(flight, now.status, JSON.parse(now.context) as SagaContext);
        return;
      }
      if (this.stopped) throw this.stoppedError(flight);
      await pause(this.rt.clock, renewEveryMs(s.sagaLeaseMs), flight.controller.signal);
    }
  }

  /** Stops the saga's mirror (if any) and aborts its step in flight. */
  private halt(flight: Flight, reason: KeelError): void {
    // The mirror is a child of the runtime's system; XState only lets its parent stop it, so stop it from inside.
    (flight.mirror as unknown as { _stop(): void } | undefined)?._stop();
    flight.mirror = undefined;
    flight.controller.abort(reason);
  }

  private stoppedError(flight: Flight): KeelError {
    return new KeelError(
      'RUNTIME_STOPPED',
      `saga '${this.def.name}' '${flight.id}' was interrupted by stop(); a durable store resumes it on the next start()`,
    );
  }

  /**
   * Why a saga stopped by `stop()` rejects: `STORE_UNAVAILABLE` when it was
   * paused on a failing store (its progress since the last save is not
   * kept), else `RUNTIME_STOPPED`.
   */
  private interruptedError(flight: Flight): KeelError {
    if (flight.fault === undefined) return this.stoppedError(flight);
    return new KeelError(
      'STORE_UNAVAILABLE',
      `saga '${this.def.name}' '${flight.id}' was paused because the store failed, and the runtime stopped before it recovered; a durable store resumes it on the next start() from its last saved step`,
      { cause: flight.fault },
    );
  }

  /** Lets running sagas finish for the grace period, then interrupts the rest (they resume on the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ownershipTimer !== undefined) this.rt.clock.clearTimeout(this.ownershipTimer);
    this.ownershipTimer = undefined;
    if (this.flights.size === 0) return;
    if (this.def.shutdownGraceMs > 0) {
      const all = Promise.allSettled([...this.flights.values()].map((f) => f.promise));
      let timer: unknown;
      const grace = new Promise<void>((resolve) => {
        timer = this.rt.clock.setTimeout(() => resolve(), this.def.shutdownGraceMs);
      });
      await Promise.race([all, grace]);
      this.rt.clock.clearTimeout(timer);
    }
    const interruptedIds = [...this.flights.keys()];
    const flights = [...this.flights.values()];
    for (const flight of flights) {
      const interrupted = this.interruptedError(flight);
      this.halt(flight, interrupted);
      this.fail(flight, interrupted);
    }
    // A checkpoint in flight lands (or fails) before the store closes.
    await Promise.allSettled(flights.map((f) => f.writes));
    // Stopped on purpose: let another runtime (or the next start) take them now rather than after the lease.
    const s = this.store;
    if (!hasSharedSagas(s)) return;
    await s
      .releaseSagas(this.def.name, interruptedIds)
      .catch((error) => this.rt.report(error, `saga '${this.def.name}': releasing interrupted sagas failed`));
  }

  private get store(): Sagas {
    return this.rt.store as Sagas;
  }

  private newFlight(id: string): Flight {
    let resolve!: Flight['resolve'];
    let reject!: Flight['reject'];
    const promise = new Promise<SagaResult<any>>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const flight: Flight = {
      id,
      promise,
      resolve,
      reject,
      mirror: undefined,
      state: undefined,
      controller: new AbortController(),
      fault: undefined,
      attempts: { attempt: 1, notBefore: undefined },
      createdAt: this.rt.clock.now(),
      writes: Promise.resolve(),
      owned: true,
    };
    this.flights.set(id, flight);
    return flight;
  }

  private resumeFlight(flight: Flight, record: SagaRecord): void {
    if (record.version !== this.def.version) {
      throw new KeelError(
        'SAGA_VERSION_MISMATCH',
        `saga '${this.def.name}' '${record.id}' was stored by a definition with steps [${record.version}], not [${this.def.version}]`,
      );
    }
    flight.attempts = { attempt: record.attempt, notBefore: record.notBefore };
    flight.createdAt = record.createdAt;
    const value = JSON.parse(record.state) as Record<'running' | 'compensating', string>;
    const context = JSON.parse(record.context) as SagaContext;
    const resumed = this.engine.resume(value, context);
    if (this.rt.inspected) this.mirror(flight, { snapshot: this.restoredSnapshot(resumed) });
    void this.drive(flight, resumed);
  }

  /**
   * The one way a saga runs: for each transition the engine takes, checkpoint
   * the state reached, then publish what the machine published on the way
   * (events follow what the store holds), then run the invoked step, and hand
   * its outcome back to the engine as the XState event the invoked actor would
   * have sent, until the machine reaches a final state. A checkpoint waits out
   * a failing store (see `afterStoreFault`); it is never a step's outcome.
   */
  private async drive(flight: Flight, first: Transition): Promise<void> {
    const source = `saga.${this.def.name}.${flight.id}`;
    const signal = flight.controller.signal;
    let { state, effects } = first;
    try {
      for (;;) {
        flight.state = state;
        let invoke: Extract<SagaEffect, { kind: 'invoke' }> | undefined;
        for (const effect of effects) if (effect.kind === 'invoke') invoke = effect;
        // The stored status is the machine's top-level state (`running` / `compensating`, or the final one).
        const status = (state.done ? state.value : Object.keys(state.value)[0]) as SagaRecordStatus;
        await this.write(flight, status, state.value, state.context);
        if (signal.aborted) return;
        for (const effect of effects) {
          if (effect.kind === 'publish') this.rt.publish(effect.topic, effect.payload, { source });
        }
        if (state.done) {
          this.settle(flight, status, state.context);
          return;
        }
        if (!invoke) throw new Error(`saga '${this.def.name}': state ${state.key} runs no step, so it cannot end`);
        const event = await this.attempt(flight, state, status, invoke, signal);
        // Interrupted (stop(), or another runtime took the saga): a late answer must not move it here.
        if (signal.aborted) return;
        ({ state, effects } = this.engine.next(state, event));
        flight.mirror?.send(event as never);
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof KeelError && error.code === 'SAGA_NOT_OWNED') this.join(flight, error);
      else this.fail(flight, error);
    }
  }

  /** Shows the saga in the runtime's system as an actor of its machine, fresh (`input`) or restored (`snapshot`). */
  private mirror(flight: Flight, start: { input: SagaInput } | { snapshot: unknown }): void {
    const actor = createActor(this.mirrorLogic, {
      parent: this.rt.system,
      id: `saga.${this.def.name}.${flight.id}`,
      systemId: `saga.${this.def.name}.${flight.id}`,
      ...(start as { input: SagaInput }),
    });
    flight.mirror = actor;
    // A mirror that broke is a bug to report, never a reason to stop the saga it shows.
    actor.subscribe({
      error: (error) => this.rt.report(error, `saga '${this.def.name}' '${flight.id}': mirror failed`),
    });
    actor.start();
  }

  /**
   * The persisted snapshot a mirror restores from. XState restarts an invoked
   * actor on restore only when the snapshot lists it, so it lists the step in
   * flight (the mirror's steps do nothing; the runner runs it again).
   */
  private restoredSnapshot({ state, effects }: Transition): unknown {
    const children: Record<string, unknown> = {};
    for (const e of effects) {
      if (e.kind !== 'invoke') continue;
      children[e.id] = { src: e.src, snapshot: { status: 'active', input: e.input }, syncSnapshot: false };
    }
    return { status: 'active', value: state.value, historyValue: {}, context: state.context, children };
  }

  /** The saga ended `status`: it no longer runs here, and its callers get the result. */
  private settle(flight: Flight, status: SagaRecordStatus, context: SagaContext): void {
    this.flights.delete(flight.id);
    flight.resolve(resultOf(status, context));
  }

  private fail(flight: Flight, error: unknown): void {
    if (this.flights.get(flight.id) === flight) this.flights.delete(flight.id);
    flight.reject(error);
  }

  /**
   * Calls the store until it answers (see `afterStoreFault`), pausing the
   * saga meanwhile; a healthy store costs one call and nothing more.
   */
  private stored<T>(flight: Flight, op: () => Promise<T>): Promise<T> {
    let first: Promise<T>;
    try {
      first = op();
    } catch (error) {
      first = Promise.reject(error);
    }
    return first.catch((error) =>
      afterStoreFault(error, this.rt.clock, flight.controller.signal, flight, op, (e) =>
        this.rt.report(
          e,
          `saga '${this.def.name}' '${flight.id}' is paused: the store failed; it retries and goes on when the store answers`,
        ),
      ),
    );
  }

  /** Checkpoints the saga; resolves once the store has it. */
  private write(flight: Flight, status: SagaRecordStatus, value: unknown, context: SagaContext): Promise<void> {
    const record: SagaRecord = {
      saga: this.def.name,
      id: flight.id,
      version: this.def.version,
      status,
      state: JSON.stringify(value),
      context: JSON.stringify(storable(context)),
      attempt: flight.attempts.attempt,
      notBefore: flight.attempts.notBefore,
      createdAt: flight.createdAt,
      updatedAt: this.rt.clock.now(),
    };
    const save = () => {
      record.updatedAt = this.rt.clock.now();
      return this.store.saveSaga(record);
    };
    flight.writes = this.stored(flight, save);
    return flight.writes;
  }

  /**
   * Runs a step or its compensation with its retries and timeout, and returns
   * its outcome as the event the machine takes: done, failed, or (a step
   * whose result cannot be kept) `RESULT_REFUSED`.
   */
  private async attempt(
    flight: Flight,
    state: SagaState,
    phase: SagaRecordStatus,
    invoke: Extract<SagaEffect, { kind: 'invoke' }>,
    signal: AbortSignal,
  ): Promise<SagaStepEvent> {
    const { step, context }: StepRun = invoke.input;
    const s = this.steps.get(step) as ResolvedStep;
    const running = invoke.src === 'runStep';
    const value = state.value;
    const idempotencyKey = running ? `${context.sagaId}:${step}` : `${context.sagaId}:${step}:compensate`;
    const what = `saga '${this.def.name}' ${running ? 'step' : 'compensation of'} '${step}'`;
    let output: unknown;
    try {
      output = await runAttempts({
        clock: this.rt.clock,
        policy: running ? s.retry : this.def.compensationRetry,
        timeoutMs: running ? s.timeoutMs : this.def.compensationTimeoutMs,
        signal,
        state: flight.attempts,
        persist: () => this.write(flight, phase, value, state.context),
        what,
        call: (attempt, attemptSignal) => {
          const ctx: StepContext = {
            sagaId: context.sagaId,
            input: context.input,
            results: context.results,
            attempt,
            signal: attemptSignal,
            idempotencyKey,
          };
          const call = () => (running ? s.run(ctx) : (s.compensate as NonNullable<SagaStep['compensate']>)(ctx));
          const observe = this.rt.observe;
          if (observe?.sagaStep === undefined) return call();
          const info = { saga: this.def.name, sagaId: context.sagaId, step, compensation: !running, attempt };
          return observe.sagaStep(info, call);
        },
      });
    } catch (error) {
      // A checkpoint before a retry that could not be made is not the step's failure.
      if (signal.aborted || isNotOwned(error)) throw error;
      return { type: `xstate.error.actor.${invoke.id}`, error };
    } finally {
      flight.attempts = { attempt: 1, notBefore: undefined };
    }
    if (!running) return { type: `xstate.done.actor.${invoke.id}`, output };
    const kept = keepResult(output);
    if (kept.ok) return { type: `xstate.done.actor.${invoke.id}`, output: kept.value };
    const error = new KeelError(
      'INVALID_PAYLOAD',
      `${what} returned a result the saga cannot keep (${kept.problem}); the step counts as done, so it is undone (or, with no compensate, the saga ends failed)`,
    );
    return { type: RESULT_REFUSED, error };
  }
}

function isNotOwned(error: unknown): boolean {
  return error instanceof KeelError && error.code === 'SAGA_NOT_OWNED';
}

/** The context as JSON can hold it: errors become `{ name, message, code }`. */
function storable(c: SagaContext): SagaContext {
  return { ...c, error: errorData(c.error), compensationError: errorData(c.compensationError) };
}
