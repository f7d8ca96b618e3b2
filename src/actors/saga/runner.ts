import { randomUUID } from 'node:crypto';
import { type Actor, createActor, fromPromise } from 'xstate';
import { KeelError } from '../../core/errors.js';
import { encodeJson, encodeValue, errorData } from '../../core/json.js';
import { describeValue, OptionReader } from '../../core/options.js';
import { type AttemptState, runAttempts } from '../../core/retry.js';
import { isFinalSagaStatus, renewEveryMs } from '../../core/states.js';
import {
  CANCEL,
  createSagaMachine,
  RESULT_REFUSED,
  type SagaContext,
  type SagaInput,
  type SagaMachine,
  type SagaStepEvent,
  type SagaStepShape,
  SKIP,
  STEP_SOURCES,
  type StepRun,
  sagaPayloads,
  sagaTopic,
} from '../../machines/saga.js';
import {
  CANCEL_SIGNAL,
  hasSharedSagas,
  hasSignalWatch,
  type SagaRecord,
  type SagaRecordStatus,
  type SagaSignal,
  type SagaStore,
  type SharedSagas,
} from '../../stores/sagaStore.js';
import type { Store } from '../../stores/store.js';
import type { Host } from '../host.js';
import { BranchSet } from './branches.js';
import type { ResolvedSaga, ResolvedStep, SagaStep, StepContext } from './definition.js';
import { type SagaEffect, SagaEngine, type SagaState, type SagaStep as Transition } from './engine.js';
import { appendHistory, parseHistory, type SagaHistoryEntry } from './history.js';
import { Bell, listenForSignals, ringSignal } from './inbox.js';
import { encodeCursor, listQuery, type SagaInfo, type SagaPage, sagaInfo } from './info.js';
import { SagaPruner } from './pruner.js';
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
  /** The signals and cancel kept for it in the store, as last read. */
  signals: SagaSignal[];
  /** The cancel event, once a cancel reached it. */
  cancel: SagaStepEvent | undefined;
  /** True while its drive awaits a running step (a call, a sleep, a wait): a cancel then interrupts it. */
  inStep: boolean;
  /** Rung when its signals were read again (a signal may have arrived); made when it first waits for one. */
  bell: Bell | undefined;
  /** True while it sleeps or waits for a signal: `stop()` does not wait for it (it resumes on the next start). */
  waiting: boolean;
  /** The trace context of the `execute` that started it (kept in the record): its steps' spans hang under it. */
  trace: string | undefined;
  /** Every state it went through (stored with each checkpoint). */
  history: SagaHistoryEntry[];
  /** True while a checkpoint is being written (`writes` has not settled). */
  writing: boolean;
  /**
   * True once a checkpoint of it landed or it was read from the store (resumed, adopted): before, a renewal
   * misses it only because its first save is still on its way, not because another runtime took it.
   */
  saved: boolean;
  /** The attempts of the parallel branches running now, by step (stored with each checkpoint). */
  branchAttempts: Map<string, AttemptState>;
}

/** What a checkpoint adds to the history besides the state reached: a branch's retry, a failed attempt's error. */
interface HistoryNote {
  state?: string;
  attempt?: number;
  error?: unknown;
}

/** What a saga runner needs of its runtime. */
export type SagaHost = Pick<
  Host,
  'store' | 'clock' | 'publish' | 'report' | 'whenRunning' | 'inspected' | 'system' | 'observe'
>;

/** The store methods a saga needs. */
type Sagas = Store & SagaStore;

/**
 * The runners of every version of one saga name in a runtime, by version, in
 * the order they were registered. A saga runs to its end on the version it
 * started on: a runner hands a stored saga of another version to that
 * version's runner.
 */
export type SagaFamily = Map<string, SagaRunner<any>>;

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
  /** With a durable store: reads the signals other processes sent to the sagas in flight here. */
  private pollTimer: unknown;
  private unlisten: (() => void) | undefined;
  /** Resolved when every saga in flight sleeps or waits (`stop()` need not wait for them). */
  private onAllWaiting: (() => void) | undefined;
  /** Which signal of its name a `waitFor` step takes: the n-th, after the earlier steps waiting for the same name. */
  private readonly signalIndex = new Map<string, number>();
  private stopped = false;
  /** Deletes finished runs past the retention; the first registered version's runner prunes for the name. */
  private pruner: SagaPruner | undefined;

  constructor(
    private readonly rt: SagaHost,
    private readonly def: ResolvedSaga,
    private readonly family: SagaFamily = new Map(),
    /** The other sagas of the runtime, by name: a child step runs one. */
    private readonly sagaNamed: (name: string) => SagaFamily | undefined = () => undefined,
  ) {
    family.set(def.version, this);
    this.steps = new Map(def.steps.flatMap((s) => (s.parallel ? [s, ...s.parallel] : [s])).map((s) => [s.name, s]));
    const seen = new Map<string, number>();
    for (const step of def.steps) {
      if (step.waitFor === undefined) continue;
      const n = seen.get(step.waitFor) ?? 0;
      this.signalIndex.set(step.name, n);
      seen.set(step.waitFor, n + 1);
    }
    const shapeOf = (s: ResolvedStep): SagaStepShape => ({
      name: s.name,
      kind: s.kind,
      canFail: s.kind === 'run' || s.kind === 'child' || (s.kind === 'sleep' ? s.fixed !== true : s.timeoutMs > 0),
      compensable: s.compensate !== undefined,
      undoOnFailure: s.compensateOnFailure,
      ...(s.parallel && { parallel: s.parallel.map(shapeOf) }),
    });
    this.machine = createSagaMachine(def.name, def.steps.map(shapeOf));
    const silent = Object.fromEntries(Object.keys(sagaPayloads).map((name) => [name, () => {}]));
    // The mirror's steps never settle on their own: the runner sends it their outcome.
    const pending = fromPromise<unknown, StepRun>(() => new Promise(() => {}));
    this.mirrorLogic = this.machine.provide({
      // Every actor a state may invoke: one left out would settle on its own and walk the mirror ahead.
      actors: Object.fromEntries(
        [...Object.values(STEP_SOURCES), 'compensateStep'].map((src) => [src, pending]),
      ) as never,
      actions: silent as never,
    });
    this.engine = new SagaEngine(this.machine);
  }

  /** The machine state of the saga `id` while it runs in this runtime (`{ running: 'createOrder' }`), else undefined. */
  stateOf(id: string): unknown {
    return this.flights.get(id)?.state?.value;
  }

  /**
   * The stored run `id` of this saga name (any version) with its history;
   * undefined when no run has that id (never started, or pruned by the
   * retention). A query, so an unknown id is no error (unlike `signal`/`cancel`).
   */
  async get(id: unknown): Promise<SagaInfo | undefined> {
    const what = `saga('${this.def.name}').get`;
    if (typeof id !== 'string' || id === '') {
      throw new KeelError(
        'INVALID_OPTIONS',
        `${what}: the saga id must be a non-empty string, got ${describeValue(id)}`,
      );
    }
    await this.rt.whenRunning(what);
    const record = await this.store.loadSaga(this.def.name, id);
    return record && sagaInfo(record);
  }

  /** A page of the stored runs of this saga name, newest first (keyset pagination: pass `next` as `after`). */
  async list(options?: unknown): Promise<SagaPage> {
    const what = `saga('${this.def.name}').list`;
    const query = listQuery(what, options);
    await this.rt.whenRunning(what);
    // One more than asked tells whether a next page exists.
    const records = await this.store.listSagas(this.def.name, { ...query, limit: query.limit + 1 });
    const page = records.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page.map(sagaInfo),
      ...(records.length > query.limit && last && { next: encodeCursor(last) }),
    };
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
    // In the caller's async context; a saga already stored keeps the context of the execute that started it.
    flight.trace = this.rt.observe?.traceContext?.();
    void (async () => {
      await this.rt.whenRunning(what);
      const stored = await this.stored(flight, () => this.store.loadSaga(this.def.name, id));
      if (stored && stored.version !== this.def.version) {
        // Started on another version: it finishes there.
        if (this.flights.get(id) === flight) this.flights.delete(id);
        this.runnerOf(stored).execute(input, { id }).then(flight.resolve, flight.reject);
        return;
      }
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
   * Sends the signal `name` to the saga `id`: kept in the store until the saga
   * ends, so a `waitFor` step reached later still gets it; the payload becomes
   * that step's result. `NOT_FOUND` for an unknown saga or a signal no step
   * waits for; `SAGA_FINISHED` once the saga ended.
   */
  async signal(id: unknown, name: unknown, payload: unknown): Promise<void> {
    const other = await this.otherVersion(id, 'signal');
    if (other) return other.signal(id, name, payload);
    const what = `saga('${this.def.name}').signal`;
    if (typeof name !== 'string' || ![...this.steps.values()].some((s) => s.waitFor === name)) {
      const known = [...new Set([...this.steps.values()].flatMap((s) => s.waitFor ?? []))];
      throw new KeelError(
        'NOT_FOUND',
        `${what}: no step of saga '${this.def.name}' waits for the signal ${describeValue(name)} (it waits for: ${known.join(', ') || 'no signal'})`,
      );
    }
    // No payload is a signal all the same: the step's result is null.
    const encoded = payload === undefined ? 'null' : encodeValue(payload, what, 'payload');
    await this.sendToSaga(what, id, name, encoded);
  }

  /**
   * Cancels the saga `id` from any runtime sharing the store: its running step's
   * signal aborts with `CANCELLED`, what completed is undone, and it ends
   * `cancelled`. Resolves with how it ended (a saga that completed or was
   * already compensating before the cancel reached it ends as it would have).
   * `NOT_FOUND` for an unknown id, `SAGA_FINISHED` for a saga that had ended.
   */
  async cancel(id: unknown, reason?: unknown): Promise<SagaResult<TSteps>> {
    const other = await this.otherVersion(id, 'cancel');
    if (other) return other.cancel(id, reason) as Promise<SagaResult<TSteps>>;
    const what = `saga('${this.def.name}').cancel`;
    if (reason !== undefined && typeof reason !== 'string') {
      throw new KeelError('INVALID_OPTIONS', `${what}: the reason must be a string, got ${describeValue(reason)}`);
    }
    const sagaId = await this.sendToSaga(what, id, CANCEL_SIGNAL, JSON.stringify(reason ?? null));
    const flight = this.flights.get(sagaId);
    if (flight?.owned) return flight.promise as Promise<SagaResult<TSteps>>;
    // Run elsewhere (or about to be adopted here): its end is in the store.
    const watch = new AbortController();
    for (;;) {
      const local = this.flights.get(sagaId);
      if (local?.owned) return local.promise as Promise<SagaResult<TSteps>>;
      const now = await this.store.loadSaga(this.def.name, sagaId);
      if (now && isFinalSagaStatus(now.status)) {
        return resultOf(now.status, JSON.parse(now.context) as SagaContext) as SagaResult<TSteps>;
      }
      if (this.stopped) throw new KeelError('RUNTIME_STOPPED', `${what}: the runtime stopped before '${sagaId}' ended`);
      await pause(this.rt.clock, this.def.pollMs, watch.signal);
    }
  }

  /** The runner of another version when the saga `id` is stored with that version (it is that version's to run). */
  private async otherVersion(id: unknown, what: string): Promise<SagaRunner<any> | undefined> {
    if (typeof id !== 'string' || this.flights.has(id)) return undefined;
    await this.rt.whenRunning(`saga('${this.def.name}').${what}`);
    const stored = await this.store.loadSaga(this.def.name, id);
    if (!stored || stored.version === this.def.version) return undefined;
    return this.runnerOf(stored);
  }

  /** The runner of the version `record` was started on; `SAGA_VERSION_MISMATCH` when no definition here has it. */
  private runnerOf(record: SagaRecord): SagaRunner<any> {
    const runner = this.family.get(record.version);
    if (runner) return runner;
    throw this.unknownVersion(record);
  }

  private unknownVersion(record: SagaRecord): KeelError {
    return new KeelError(
      'SAGA_VERSION_MISMATCH',
      `saga '${this.def.name}' '${record.id}' was started on version [${record.version}], which no definition in this runtime has (registered: ${[...this.family.keys()].map((v) => `[${v}]`).join(', ')}); register it beside the others (rt.saga(name, { version, steps })) to let it finish`,
    );
  }

  /**
   * Unfinished sagas of a version no definition here has are left in the
   * store for a runtime that has it; each is reported (onError and
   * `saga.<name>.versionUnknown`), never skipped silently. The first
   * registered version reports for the family.
   */
  private reportUnknownVersions(records: readonly SagaRecord[]): void {
    if (this.family.values().next().value !== this) return;
    for (const record of records) {
      if (this.family.has(record.version)) continue;
      const error = this.unknownVersion(record);
      this.rt.report(error, `saga '${this.def.name}' could not resume '${record.id}'`);
      this.rt.publish(
        sagaTopic(this.def.name, 'versionUnknown'),
        { sagaId: record.id, version: record.version, registered: [...this.family.keys()] },
        { source: `saga.${this.def.name}.${record.id}` },
      );
    }
  }

  /** Keeps a signal for the saga `id` after checking it exists and runs; rings this process's runtimes. */
  private async sendToSaga(what: string, id: unknown, name: string, payload: string): Promise<string> {
    if (typeof id !== 'string' || id === '') {
      throw new KeelError(
        'INVALID_OPTIONS',
        `${what}: the saga id must be a non-empty string, got ${describeValue(id)}`,
      );
    }
    await this.rt.whenRunning(what);
    const stored = await this.store.loadSaga(this.def.name, id);
    if (!stored && !this.flights.has(id)) {
      throw new KeelError('NOT_FOUND', `${what}: saga '${this.def.name}' has no run '${id}'`);
    }
    if (stored && isFinalSagaStatus(stored.status)) {
      throw new KeelError('SAGA_FINISHED', `${what}: saga '${this.def.name}' '${id}' already ended ${stored.status}`);
    }
    await this.store.sendSagaSignal({ saga: this.def.name, id, name, payload, at: this.rt.clock.now() });
    ringSignal(this.store, this.def.name, id);
    return id;
  }

  /** Reads the signals kept for `flights` and wakes them; a cancel among them is taken. */
  private async readSignals(flights: readonly Flight[]): Promise<void> {
    if (flights.length === 0) return;
    let all: SagaSignal[];
    try {
      all = await this.store.sagaSignals(
        this.def.name,
        flights.map((f) => f.id),
      );
    } catch (error) {
      this.rt.report(error, `saga '${this.def.name}': reading signals failed; retrying at the next poll`);
      return;
    }
    const byId = new Map<string, SagaSignal[]>();
    for (const g of all) {
      let list = byId.get(g.id);
      if (!list) byId.set(g.id, (list = []));
      list.push(g);
    }
    for (const flight of flights) {
      flight.signals = byId.get(flight.id) ?? [];
      const cancel = flight.signals.find((g) => g.name === CANCEL_SIGNAL);
      if (cancel && !flight.cancel) {
        const reason = (JSON.parse(cancel.payload) as string | null) ?? undefined;
        flight.cancel = {
          type: CANCEL,
          reason,
          error: new KeelError(
            'CANCELLED',
            `saga '${this.def.name}' '${flight.id}' was cancelled${reason === undefined ? '' : `: ${reason}`}`,
          ),
        };
        this.interrupt(flight);
      }
      flight.bell?.ring();
    }
  }

  /**
   * Reads a saga's signals again as soon as one is kept for it: rung in this
   * process, and (Postgres) notified from others. Either can miss one; the
   * poll (`armPoll`) does not.
   */
  private watchSignals(s: Sagas): () => void {
    const read = (saga: string | null | undefined, id?: string) => {
      if (saga === null) return;
      if (saga === undefined) {
        // Notifications resumed: what was sent meanwhile is unknown.
        void this.readSignals([...this.flights.values()].filter((f) => f.owned && f.state !== undefined));
        return;
      }
      const flight = saga === this.def.name && id !== undefined ? this.flights.get(id) : undefined;
      if (flight) void this.readSignals([flight]);
    };
    const offLocal = listenForSignals(s, read);
    const offRemote = hasSignalWatch(s) ? s.watchSagaSignals(read) : undefined;
    return () => {
      offLocal();
      offRemote?.();
    };
  }

  /** With a durable store, reads signals other processes sent every `pollMs` while sagas are in flight here. */
  private armPoll(): void {
    if (this.stopped || this.pollTimer !== undefined || this.rt.store.kind === 'memory') return;
    this.pollTimer = this.rt.clock.setTimeout(() => {
      this.pollTimer = undefined;
      const flights = [...this.flights.values()].filter((f) => f.owned && f.state !== undefined);
      void this.readSignals(flights).finally(() => {
        if (this.flights.size > 0) this.armPoll();
      });
    }, this.def.pollMs);
  }

  /**
   * Resumes every unfinished saga of this definition found in the store. With
   * a store shared by several runtimes, only those no live runtime owns, and
   * from then on it checks every third of `sagaLeaseMs` for sagas whose owner died.
   */
  async resumeAll(): Promise<void> {
    const s = this.store;
    this.unlisten ??= this.watchSignals(s);
    this.startPruner();
    if (hasSharedSagas(s)) {
      await this.adopt(s);
      this.armOwnership(s);
      if (this.family.values().next().value === this)
        this.reportUnknownVersions(await s.unfinishedSagas(this.def.name));
      return;
    }
    const records = await s.unfinishedSagas(this.def.name);
    this.resumeRecords(records.filter((r) => r.version === this.def.version));
    this.reportUnknownVersions(records);
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

  /** The first registered version's runner prunes the finished runs of the name (by its `retention`). */
  private startPruner(): void {
    if (this.family.values().next().value !== this) return;
    if (typeof (this.store as Partial<SagaStore>).pruneSagas !== 'function') return;
    this.pruner ??= new SagaPruner(
      { store: this.store, clock: this.rt.clock, report: (e, c) => this.rt.report(e, c) },
      this.def.name,
      this.def.retention,
    );
    this.pruner.start();
  }

  /** A run of this name finished here: the family's pruner counts it. */
  private noteFinished(): void {
    (this.family.values().next().value as SagaRunner<any> | undefined)?.pruner?.noteFinished();
  }

  /** Takes the sagas nobody owns any more and runs them here. */
  private async adopt(s: SharedSagas): Promise<void> {
    const records = await s.adoptSagas(this.def.name, this.rt.clock.now(), undefined, [this.def.version]);
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
      const ids = [...this.flights.values()].filter((f) => f.owned && f.saved).map((f) => f.id);
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
      const [mine] = await this.stored(flight, () =>
        s.adoptSagas(this.def.name, this.rt.clock.now(), flight.id, [this.def.version]),
      );
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
    if (this.pollTimer !== undefined) this.rt.clock.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.unlisten?.();
    this.unlisten = undefined;
    await this.pruner?.stop();
    if (this.flights.size === 0) return;
    if (this.def.shutdownGraceMs > 0) {
      const all = Promise.allSettled([...this.flights.values()].map((f) => f.promise));
      let timer: unknown;
      const grace = new Promise<void>((resolve) => {
        timer = this.rt.clock.setTimeout(() => resolve(), this.def.shutdownGraceMs);
      });
      // A saga that sleeps or waits for a signal is not worth the grace: its deadline is stored, it resumes as it was.
      const waiting = new Promise<void>((resolve) => {
        this.onAllWaiting = resolve;
      });
      this.noteWaiting();
      await Promise.race([all, grace, waiting]);
      this.onAllWaiting = undefined;
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

  /** Lets `stop()` go on once every saga in flight here sleeps or waits. */
  private noteWaiting(): void {
    if (!this.onAllWaiting) return;
    for (const f of this.flights.values()) if (!f.waiting) return;
    this.onAllWaiting();
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
      signals: [],
      cancel: undefined,
      inStep: false,
      bell: undefined,
      waiting: false,
      trace: undefined,
      history: [],
      writing: false,
      saved: false,
      branchAttempts: new Map(),
    };
    this.flights.set(id, flight);
    this.armPoll();
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
    flight.trace = record.trace;
    flight.saved = true;
    flight.history = parseHistory(record.history);
    flight.branchAttempts = new Map(
      Object.entries(
        record.branches === undefined ? {} : (JSON.parse(record.branches) as Record<string, AttemptState>),
      ),
    );
    const value = JSON.parse(record.state) as Record<'running' | 'compensating', string>;
    const context = JSON.parse(record.context) as SagaContext;
    const resumed = this.engine.resume(value, context);
    if (this.rt.inspected) this.mirror(flight, { snapshot: this.restoredSnapshot(resumed) });
    // A cancel sent while no runtime ran it is taken before its step runs again.
    void this.readSignals([flight]).then(() => this.drive(flight, resumed));
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
    const branches = new BranchSet(this.def.name);
    try {
      for (;;) {
        flight.state = state;
        let invoke: Extract<SagaEffect, { kind: 'invoke' }> | undefined;
        for (const effect of effects) if (effect.kind === 'invoke') invoke = effect;
        const status = statusOf(state);
        await this.write(flight, status, state.value, state.context);
        // The store holds this state now: its events are this runtime's to publish even if it was interrupted
        // meanwhile (lost its lease, stopped), since whoever resumes the saga publishes only what it does after.
        for (const effect of effects) {
          if (effect.kind === 'publish') this.rt.publish(effect.topic, effect.payload, { source });
        }
        if (signal.aborted) return;
        if (state.done) {
          this.noteFinished();
          this.settle(flight, status, state.context);
          return;
        }
        let event: SagaStepEvent;
        // A cancel that came outside a step is taken when the next running step would start.
        const cancel = invoke?.src !== 'compensateStep' && status === 'running' ? flight.cancel : undefined;
        if (!cancel && invoke && this.isBranch(invoke)) {
          for (const effect of effects) {
            if (effect.kind === 'invoke') {
              // A branch's attempts are checkpointed (`branchAttempts`): a resumed group goes on with each one's count.
              branches.start(effect.id, signal, (own) => this.attempt(flight, undefined, 'running', effect, own));
            }
          }
        }
        if (cancel) event = cancel;
        else if (branches.size > 0) {
          flight.inStep = true;
          event = await branches.next();
          if (!signal.aborted) flight.inStep = false;
        } else if (!invoke) {
          throw new Error(`saga '${this.def.name}': state ${state.key} runs no step, so it cannot end`);
        } else if (invoke.src === 'compensateStep') event = await this.attempt(flight, state, status, invoke, signal);
        else {
          // Until it settles, a cancel interrupts this drive (see `interrupt`).
          flight.inStep = true;
          event = await (invoke.src === 'sleep'
            ? this.sleep(flight, state, status, invoke, signal)
            : invoke.src === 'waitForSignal'
              ? this.waitForSignal(flight, state, status, invoke, signal)
              : invoke.src === 'childSaga'
                ? this.runChild(invoke, signal)
                : this.attempt(flight, state, status, invoke, signal));
          // An interrupted drive leaves the flight to the drive that took over.
          if (!signal.aborted) flight.inStep = false;
        }
        // Interrupted (stop(), or another runtime took the saga): a late answer must not move it here.
        if (signal.aborted) return;
        flight.waiting = false;
        flight.attempts = { attempt: 1, notBefore: undefined };
        ({ state, effects } = this.engine.next(state, event));
        // Branches whose state was left (another failed) are aborted now, not after the checkpoint.
        for (const effect of effects) if (effect.kind === 'stop') branches.stop(effect.id, state.context.failedStep);
        flight.mirror?.send(event as never);
      }
    } catch (error) {
      if (signal.aborted) return;
      branches.stopAll();
      if (error instanceof KeelError && error.code === 'SAGA_NOT_OWNED') this.join(flight, error);
      else this.fail(flight, error);
    }
  }

  private isBranch(invoke: Extract<SagaEffect, { kind: 'invoke' }>): boolean {
    return invoke.src !== 'compensateStep' && this.steps.get(invoke.input.step)?.branchOf !== undefined;
  }

  /**
   * A cancel reached the saga while its drive awaits a running step: abort
   * the step's signal with the `CANCELLED` error and go on from the cancel
   * event in a new drive, without waiting for the step (it counts as not
   * done; a step whose effect may land anyway says so with
   * `compensateOnFailure`, as for a timeout). The old drive finds its signal
   * aborted when the step settles and stops there. Outside a running step
   * the drive takes the cancel itself when it reaches the next one.
   */
  private interrupt(flight: Flight): void {
    const { cancel, state } = flight;
    if (!cancel || !state || !flight.inStep || this.flights.get(flight.id) !== flight) return;
    flight.inStep = false;
    flight.controller.abort(cancel.error);
    flight.controller = new AbortController();
    flight.waiting = false;
    flight.attempts = { attempt: 1, notBefore: undefined };
    let next: Transition;
    try {
      next = this.engine.next(state, cancel);
    } catch (error) {
      this.fail(flight, error);
      return;
    }
    flight.mirror?.send(cancel as never);
    void this.drive(flight, next);
  }

  /** A durable sleep: the deadline is stored (`notBefore`) before the wait, so a restart keeps it. */
  private async sleep(
    flight: Flight,
    state: SagaState,
    status: SagaRecordStatus,
    invoke: Extract<SagaEffect, { kind: 'invoke' }>,
    signal: AbortSignal,
  ): Promise<SagaStepEvent> {
    const { step, context } = invoke.input;
    const s = this.steps.get(step) as ResolvedStep;
    let deadline = flight.attempts.notBefore;
    if (deadline === undefined) {
      const now = this.rt.clock.now();
      try {
        deadline = (s.wakeAt as NonNullable<ResolvedStep['wakeAt']>)(this.contextOf(context, step, signal), now);
        if (typeof deadline !== 'number' || !Number.isFinite(deadline)) {
          throw new KeelError(
            'INVALID_OPTIONS',
            `saga '${this.def.name}' step '${step}': until() must return a finite epoch ms, got ${describeValue(deadline)}`,
          );
        }
      } catch (error) {
        return { type: `xstate.error.actor.${invoke.id}`, error };
      }
      if (deadline > now) {
        flight.attempts.notBefore = deadline;
        await this.write(flight, status, state.value, state.context);
      }
    }
    flight.waiting = true;
    this.noteWaiting();
    for (let left = deadline - this.rt.clock.now(); left > 0; left = deadline - this.rt.clock.now()) {
      await pause(this.rt.clock, left, signal);
      if (signal.aborted) throw signal.reason;
    }
    return { type: `xstate.done.actor.${invoke.id}`, output: undefined };
  }

  /**
   * Waits for the signal the step names: the payload of the n-th signal of
   * that name kept for the saga (n counts the earlier steps waiting for the
   * same name). Its timeout is a deadline stored like a sleep's.
   */
  private async waitForSignal(
    flight: Flight,
    state: SagaState,
    status: SagaRecordStatus,
    invoke: Extract<SagaEffect, { kind: 'invoke' }>,
    signal: AbortSignal,
  ): Promise<SagaStepEvent> {
    const { step } = invoke.input;
    const s = this.steps.get(step) as ResolvedStep;
    const index = this.signalIndex.get(step) ?? 0;
    let deadline = flight.attempts.notBefore;
    if (deadline === undefined && s.timeoutMs > 0) {
      deadline = this.rt.clock.now() + s.timeoutMs;
      flight.attempts.notBefore = deadline;
      await this.write(flight, status, state.value, state.context);
    }
    await this.readSignals([flight]);
    flight.waiting = true;
    this.noteWaiting();
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const got = flight.signals.filter((g) => g.name === s.waitFor)[index];
      if (got) return { type: `xstate.done.actor.${invoke.id}`, output: JSON.parse(got.payload) };
      const left = deadline === undefined ? undefined : deadline - this.rt.clock.now();
      if (left !== undefined && left <= 0) {
        const error = new KeelError(
          'STEP_TIMEOUT',
          `saga '${this.def.name}' step '${step}' waited ${s.timeoutMs} ms for the signal '${s.waitFor}', which did not come`,
        );
        return { type: `xstate.error.actor.${invoke.id}`, error };
      }
      flight.bell ??= new Bell();
      const rang = flight.bell.wait();
      if (left === undefined) await Promise.race([rang, aborted(signal)]);
      else await Promise.race([rang, pause(this.rt.clock, left, signal)]);
    }
  }

  /** The runner of the saga a child step runs (its newest version), or why there is none. */
  private childRunner(s: ResolvedStep): SagaRunner<any> {
    const spec = s.child as NonNullable<ResolvedStep['child']>;
    const runners = [...(this.sagaNamed(spec.saga)?.values() ?? [])];
    const runner = runners.at(-1);
    if (!runner) {
      throw new KeelError(
        'NOT_FOUND',
        `saga '${this.def.name}' step '${s.name}': no saga '${spec.saga}' is registered in this runtime`,
      );
    }
    return runner;
  }

  /**
   * Runs the child saga of a `child` step to its end, under the id
   * `<parentId>/<step>` (a resumed parent joins the same child, or gets its
   * stored result). Completed: the step's result is the child's results;
   * compensated, cancelled or failed: the step fails with the child's error. A
   * cancel of the parent cancels the child.
   */
  private async runChild(invoke: Extract<SagaEffect, { kind: 'invoke' }>, signal: AbortSignal): Promise<SagaStepEvent> {
    const { step, context } = invoke.input;
    const s = this.steps.get(step) as ResolvedStep;
    const childId = `${context.sagaId}/${step}`;
    let runner: SagaRunner<any>;
    let input: unknown;
    try {
      runner = this.childRunner(s);
      input = (s.child as NonNullable<ResolvedStep['child']>).input(this.contextOf(context, step, signal));
    } catch (error) {
      return { type: `xstate.error.actor.${invoke.id}`, error };
    }
    const onAbort = () => {
      const reason = signal.reason as unknown;
      if (reason instanceof KeelError && reason.code === 'CANCELLED') {
        runner.cancel(childId, (reason as KeelError).message).catch(() => {});
      }
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await runner.execute(input, { id: childId });
      if (r.status === 'completed') return { type: `xstate.done.actor.${invoke.id}`, output: r.results };
      return { type: `xstate.error.actor.${invoke.id}`, error: r.error };
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      return { type: `xstate.error.actor.${invoke.id}`, error };
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Undoes the completed child saga of a `child` step as a whole (see `undoCompleted`). */
  private undoChild(parent: SagaContext, s: ResolvedStep, signal: AbortSignal): Promise<string[]> {
    return this.childRunner(s).undoCompleted(`${parent.sagaId}/${s.name}`, signal, parent.error);
  }

  /**
   * Undoes a saga that completed, as a whole: every step with a compensation,
   * in reverse order (a child step's child the same way), each with the
   * compensation retries. Its idempotency keys are the ones a compensation
   * of that step always has, so an undo run again after a crash changes
   * nothing twice. Then the run ends `compensated` (its error: `cause`, why
   * its parent compensated) and `saga.<name>.compensated` is published. A saga
   * that did not complete undid itself (or was undone already): nothing to do.
   * Resolves with the steps undone.
   */
  async undoCompleted(id: string, signal: AbortSignal, cause?: unknown): Promise<string[]> {
    const record = await this.store.loadSaga(this.def.name, id);
    if (record?.status !== 'completed') return [];
    if (record.version !== this.def.version) return this.runnerOf(record).undoCompleted(id, signal, cause);
    const context = JSON.parse(record.context) as SagaContext;
    const history = parseHistory(record.history);
    const undone: string[] = [];
    const order = this.def.steps.flatMap((x) => x.parallel ?? [x]).reverse();
    for (const step of order) {
      if (!step.compensate) continue;
      appendHistory(
        history,
        { compensating: step.name },
        this.rt.clock.now(),
        1,
        undone.length === 0 ? cause : undefined,
      );
      const state: AttemptState = { attempt: 1, notBefore: undefined };
      await runAttempts({
        clock: this.rt.clock,
        policy: this.def.compensationRetry,
        timeoutMs: this.def.compensationTimeoutMs,
        signal,
        state,
        // Kept in memory only: an undo interrupted by a crash runs again from its first step (idempotently).
        persist: async () =>
          appendHistory(history, { compensating: step.name }, this.rt.clock.now(), state.attempt, undefined),
        what: `saga '${this.def.name}' '${id}': undoing '${step.name}' as part of its parent's compensation`,
        call: (attempt, attemptSignal) => {
          if (step.child) return this.undoChild({ ...context, sagaId: id, error: cause }, step, attemptSignal);
          return (step.compensate as NonNullable<ResolvedStep['compensate']>)({
            ...this.contextOf(context, step.name, attemptSignal),
            attempt,
            idempotencyKey: `${id}:${step.name}:compensate`,
          });
        },
      });
      undone.push(step.name);
    }
    const ended: SagaContext = { ...context, compensated: undone, error: errorData(cause) };
    const now = this.rt.clock.now();
    appendHistory(history, 'compensated', now, undefined, cause);
    await this.store.saveSaga({
      ...record,
      status: 'compensated',
      state: JSON.stringify('compensated'),
      context: JSON.stringify(storable(ended)),
      attempt: 1,
      notBefore: undefined,
      updatedAt: now,
      history: JSON.stringify(history),
    });
    this.noteFinished();
    this.rt.publish(sagaTopic(this.def.name, 'compensated'), sagaPayloads.compensated(ended), {
      source: `saga.${this.def.name}.${id}`,
    });
    return undone;
  }

  private contextOf(context: SagaContext, step: string, signal: AbortSignal): StepContext {
    return {
      sagaId: context.sagaId,
      input: context.input,
      results: context.results,
      attempt: 1,
      signal,
      idempotencyKey: `${context.sagaId}:${step}`,
    };
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
    this.noteWaiting();
  }

  private fail(flight: Flight, error: unknown): void {
    if (this.flights.get(flight.id) === flight) this.flights.delete(flight.id);
    flight.reject(error);
    this.noteWaiting();
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

  /**
   * Checkpoints the saga, with its history and its branches' attempts; resolves
   * once the store has it. A saga's checkpoints land one after another in the
   * order they were made (parallel branches checkpoint their retries at once).
   */
  private write(
    flight: Flight,
    status: SagaRecordStatus,
    value: unknown,
    context: SagaContext,
    note: HistoryNote = {},
  ): Promise<void> {
    const final = isFinalSagaStatus(status);
    appendHistory(
      flight.history,
      note.state ?? value,
      this.rt.clock.now(),
      final ? undefined : (note.attempt ?? flight.attempts.attempt),
      note.error ?? this.whyHere(flight, status, context),
    );
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
      ...(flight.trace !== undefined && { trace: flight.trace }),
      history: JSON.stringify(flight.history),
      ...(flight.branchAttempts.size > 0 && { branches: JSON.stringify(Object.fromEntries(flight.branchAttempts)) }),
    };
    const save = () => {
      record.updatedAt = this.rt.clock.now();
      return this.store.saveSaga(record);
    };
    // Only a parallel branch's retry can checkpoint while another write is in flight: it waits its turn.
    // Otherwise the write starts now, in this tick, to share the store's batch with the other sagas' writes.
    const write = flight.writing
      ? flight.writes.catch(() => {}).then(() => this.stored(flight, save))
      : this.stored(flight, save);
    flight.writes = write;
    flight.writing = true;
    write.then(
      () => {
        flight.saved = true;
        if (flight.writes === write) flight.writing = false;
      },
      () => flight.writes === write && (flight.writing = false),
    );
    return write;
  }

  /**
   * The error that brought the saga to a state, for its history entry: the
   * failure when it leaves the running steps to undo them, and how it ended.
   */
  private whyHere(flight: Flight, status: SagaRecordStatus, context: SagaContext): unknown {
    if (status === 'completed' || status === 'running') return undefined;
    if (status === 'failed') return context.compensationError ?? context.error;
    if (status !== 'compensating') return context.error;
    const last = flight.history.at(-1);
    return last === undefined || last.state.startsWith('running') ? context.error : undefined;
  }

  /**
   * Runs a step or its compensation with its retries and timeout, and returns
   * its outcome as the event the machine takes: done, failed, or (a step
   * whose result cannot be kept) `RESULT_REFUSED`.
   */
  private async attempt(
    flight: Flight,
    /** The state whose step this is; undefined for a parallel branch (its retries are not checkpointed). */
    state: SagaState | undefined,
    phase: SagaRecordStatus,
    invoke: Extract<SagaEffect, { kind: 'invoke' }>,
    signal: AbortSignal,
  ): Promise<SagaStepEvent> {
    const { step, context }: StepRun = invoke.input;
    const s = this.steps.get(step) as ResolvedStep;
    const running = invoke.src !== 'compensateStep';
    // A branch that did not complete left nothing to undo.
    if (!running && s.branchOf !== undefined && !context.completed?.includes(step)) return { type: SKIP };
    const idempotencyKey = running ? `${context.sagaId}:${step}` : `${context.sagaId}:${step}:compensate`;
    const what = `saga '${this.def.name}' ${running ? 'step' : 'compensation of'} '${step}'`;
    // A parallel branch keeps its own attempts (stored with the saga's checkpoints, so a crash keeps the count).
    let attempts = flight.attempts;
    if (!state) {
      attempts = flight.branchAttempts.get(step) ?? { attempt: 1, notBefore: undefined };
      flight.branchAttempts.set(step, attempts);
    }
    let lastError: unknown;
    const persist = (): Promise<void> => {
      if (state) return this.write(flight, phase, state.value, state.context, { error: lastError });
      const at = flight.state;
      if (!at) return Promise.resolve();
      return this.write(flight, phase, at.value, at.context, {
        state: `running.${s.branchOf}(${step}.run)`,
        attempt: attempts.attempt,
        error: lastError,
      });
    };
    const call = (attempt: number, attemptSignal: AbortSignal): unknown => {
      const ctx: StepContext = {
        sagaId: context.sagaId,
        input: context.input,
        results: context.results,
        attempt,
        signal: attemptSignal,
        idempotencyKey,
      };
      if (!running && s.child) return this.undoChild(context, s, attemptSignal);
      const perform = () => (running ? s.run : s.compensate)?.(ctx);
      const observe = this.rt.observe;
      if (observe?.sagaStep === undefined) return perform();
      const info = {
        saga: this.def.name,
        sagaId: context.sagaId,
        step,
        compensation: !running,
        attempt,
        trace: flight.trace,
      };
      return observe.sagaStep(info, perform);
    };
    let output: unknown;
    try {
      output = await runAttempts({
        clock: this.rt.clock,
        policy: running ? s.retry : this.def.compensationRetry,
        timeoutMs: running ? s.timeoutMs : this.def.compensationTimeoutMs,
        signal,
        state: attempts,
        persist,
        what,
        call: async (attempt, attemptSignal) => {
          try {
            return await call(attempt, attemptSignal);
          } catch (error) {
            // The history entry of the retry says why it was needed.
            lastError = error;
            throw error;
          }
        },
      });
    } catch (error) {
      // A checkpoint before a retry that could not be made is not the step's failure.
      if (signal.aborted || isNotOwned(error)) throw error;
      return { type: `xstate.error.actor.${invoke.id}`, error };
    } finally {
      if (!state) flight.branchAttempts.delete(step);
    }
    if (!running) return { type: `xstate.done.actor.${invoke.id}`, output };
    const kept = keepResult(output);
    if (kept.ok) return { type: `xstate.done.actor.${invoke.id}`, output: kept.value };
    const error = new KeelError(
      'INVALID_PAYLOAD',
      `${what} returned a result the saga cannot keep (${kept.problem}); the step counts as done, so it is undone (or, with no compensate, the saga ends failed)`,
    );
    return { type: s.branchOf === undefined ? RESULT_REFUSED : `${RESULT_REFUSED}.${step}`, error };
  }
}

/** The stored status of a state: its top-level state (`running`, `compensating`, or the final one). */
function statusOf(state: SagaState): SagaRecordStatus {
  if (state.done) return state.value as SagaRecordStatus;
  const top = Object.keys(state.value)[0] as string;
  return top === 'cancelling' ? 'compensating' : (top as SagaRecordStatus);
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function isNotOwned(error: unknown): boolean {
  return error instanceof KeelError && error.code === 'SAGA_NOT_OWNED';
}

/** The context as JSON can hold it: errors become `{ name, message, code }`. */
function storable(c: SagaContext): SagaContext {
  return { ...c, error: errorData(c.error), compensationError: errorData(c.compensationError) };
}
