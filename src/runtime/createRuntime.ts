import type { AnyActorLogic, AnyActorRef, InspectionEvent, Observer } from 'xstate';
import { createActor, fromPromise } from 'xstate';
import { type Bus, busLogic, EventBus, type EventMap } from '../actors/bus/bus.js';
import { DurableSubscriptions } from '../actors/bus/durable.js';
import { type BusOptions, resolveBusOptions } from '../actors/bus/durableOptions.js';
import type { Component, Host, LifecycleState } from '../actors/host.js';
import type { SagaOptions, SagaStep } from '../actors/saga/definition.js';
import { type Clock, systemClock } from '../core/clock.js';
import { invalidOptions, KeelError } from '../core/errors.js';
import { OptionReader } from '../core/options.js';
import type { MetricsSource, TelemetryHooks } from '../core/telemetry.js';
import { untilSnapshot } from '../core/untilSnapshot.js';
import { runtimeMachine } from '../machines/runtime.js';
import { memoryStore } from '../stores/memory/store.js';
import { isBusBridge, type Store } from '../stores/store.js';
import { type Breaker, type BreakerOptions, breakerFor } from './breakers.js';
import { type Queue, type QueueOptions, queueFor } from './queues.js';
import { type Saga, sagaFor } from './sagas.js';
import { listSchedules, type Schedule, type ScheduleInfo, type ScheduleOptions, scheduleFor } from './schedules.js';

/** Options of `createRuntime`. */
export interface RuntimeOptions {
  /** Where durable state lives; default `memoryStore()`. */
  store?: Store;
  /** Time source for every timer of the runtime; tests pass a simulated clock. */
  clock?: Clock;
  /** Forwarded to XState inspection (works with the Stately inspector). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /**
   * Called for every failure that has no other place to go (actor errors,
   * failures of `bus.handler.failed` handlers). Default: `console.error` when
   * nobody subscribed to `runtime.actor.failed`.
   */
  onError?: (error: unknown, detail: string) => void;
  /** Serves the live viewer on 127.0.0.1 from `start()` to `stop()`: `{ port: 4400 }` (0 = a free port, see `rt.viewer.url`). */
  viewer?: ViewerOptions;
  /**
   * Prometheus metrics (needs the package `prom-client`): `true` adds `GET /metrics` to the viewer and
   * `rt.metrics.scrape()`; `{ port }` also serves `/metrics` on its own port (127.0.0.1 unless `host`).
   */
  metrics?: boolean | MetricsOptions;
  /** The bus's durable subscriptions: `{ retentionMs }` of the event log (default 7 days), `{ refreshMs }` (default 1000). */
  bus?: BusOptions;
}

/** Options of `createRuntime({ metrics })`. */
export interface MetricsOptions {
  /** Serves `GET /metrics` on this port from `start()` to `stop()`; 0 picks a free one (see `rt.metrics.url`). */
  port?: number;
  /** Interface the metrics port binds; default 127.0.0.1. */
  host?: string;
}

/** A runtime's Prometheus metrics (`createRuntime({ metrics })`). */
export interface RuntimeMetrics extends MetricsSource {
  /** The address of `/metrics` on its own port (`metrics: { port }`), once listening. */
  readonly url: string | undefined;
}

/**
 * How a runtime gets metrics and traces without importing them: the layer
 * above (`src/telemetry`, wired in `src/createRuntime.ts`) hands this to the constructor.
 */
export interface TelemetrySupport {
  /** Throws `INVALID_OPTIONS` unless `metrics` is a metrics option, `MISSING_DEPENDENCY` when its package is missing. */
  check(metrics: unknown): void;
  /** Follows `rt` from now on: the hooks its patterns call, and its metrics when `metrics` asks for them. */
  attach(
    rt: Runtime<any>,
    metrics: boolean | MetricsOptions | undefined,
  ): { hooks: TelemetryHooks | undefined; metrics: RuntimeMetrics | undefined };
}

/** Options of the live viewer (`createRuntime({ viewer })`); `src/viewer` serves it. */
export interface ViewerOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one, see `viewer.url`. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /**
   * Turns on the console's operator actions (redrive, delete, cancel, pause, isolate...): each request must
   * carry it (`Authorization: Bearer <token>`) and come from the viewer's own page. Without it the viewer is
   * read-only. At least 16 characters.
   */
  adminToken?: string;
  /** Events kept per actor. */
  events?: number;
  /** Finished actors (done, stopped) kept per runtime; live ones are always kept. */
  finished?: number;
  /** Stopped runtimes kept (their actors greyed out). */
  runtimes?: number;
}

/** A runtime's own live viewer, as the runtime sees it. */
export interface AttachedViewer {
  /** The page's address once listening. */
  readonly url: string | undefined;
  listen(): Promise<string>;
  firstClient(): Promise<void>;
  close(): Promise<void>;
}

/**
 * How a runtime gets a viewer without importing one: the layer above
 * (`src/viewer`, wired in `src/createRuntime.ts`) hands this to the constructor.
 */
export interface ViewerSupport {
  /** Throws `INVALID_OPTIONS` unless `options` are viewer options. */
  check(options: unknown): void;
  /** Serves `rt` in a new viewer from its start to its stop. */
  attach(rt: Runtime<any>, options: ViewerOptions): AttachedViewer;
}

type Watcher = (rt: Runtime<any>) => void;
const watchers = new Set<Watcher>();

/**
 * Calls `fn` with every runtime created from now on, until the returned
 * function is called; such runtimes are inspected (every saga runs as a visible
 * actor). This is how `keel demo` and `keel inspect` see the runtimes that the
 * example scenarios create for themselves.
 */
export function watchNewRuntimes(fn: Watcher): () => void {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

/** The runtime's lifecycle states. */
export type RuntimeState = LifecycleState;

/** What `runtime.actor.failed` carries. */
export interface ActorFailure {
  actorId: string;
  error: unknown;
}

/** Options of `rt.spawn`. */
export interface SpawnOptions {
  id?: string;
  systemId?: string;
  input?: unknown;
}

type RuntimeSnapshot = ReturnType<ReturnType<typeof createActor<typeof runtimeMachine>>['getSnapshot']>;

const RUNTIME_OPTIONS = ['store', 'clock', 'inspect', 'onError', 'viewer', 'metrics', 'bus'];

let spawnCount = 0;

/** A keel runtime: one actor system holding the bus and every pattern actor. */
export class Runtime<E extends EventMap = Record<string, any>> {
  /** The root XState actor: the actor system. */
  readonly system;
  /** The event bus, registered in the system as `bus`. */
  readonly bus: Bus<E>;
  readonly clock: Clock;
  readonly store: Store;
  /** True when an inspector watches this runtime: patterns then run every instance as a visible actor. */
  readonly inspected: boolean;
  /** The live viewer, when created with the `viewer` option. */
  readonly viewer: AttachedViewer | undefined;
  /** Prometheus metrics, when created with the `metrics` option. */
  readonly metrics: RuntimeMetrics | undefined;
  /** @internal what the patterns may use of this runtime (`src/actors/host.ts`). */
  readonly host: Host & { breaker(name: string): Breaker };
  private readonly eventBus: EventBus<E>;
  private readonly components: Component[] = [];
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private opening: Promise<void> | undefined;
  /** Disconnects the bus from other processes (a store with `bridgeBus`, e.g. postgres with `bus`). */
  private unbridge: (() => Promise<void>) | undefined;
  private readonly onError: RuntimeOptions['onError'];

  constructor(options: RuntimeOptions = {}, viewerSupport?: ViewerSupport, telemetrySupport?: TelemetrySupport) {
    // A misspelt option (`storee`) would otherwise run silently on the defaults.
    new OptionReader('createRuntime', options, RUNTIME_OPTIONS, 'a createRuntime option');
    checkStore(options.store);
    checkClock(options.clock);
    const busOptions = resolveBusOptions(options.bus);
    if (options.inspect !== undefined && typeof options.inspect !== 'function' && typeof options.inspect !== 'object') {
      throw invalidOptions('createRuntime', 'inspect', 'must be a function or an observer object');
    }
    this.clock = options.clock ?? systemClock;
    this.store = options.store ?? memoryStore();
    this.onError = options.onError;
    checkLayerOption('viewer', options.viewer, viewerSupport, 'the viewer');
    checkLayerOption('metrics', options.metrics, telemetrySupport, 'the telemetry layer');
    this.inspected = options.inspect !== undefined || options.viewer !== undefined || watchers.size > 0;
    const report = (error: unknown, detail: string) => this.report(error, detail);
    this.eventBus = new EventBus<E>(this.clock, report);
    this.bus = this.eventBus;
    const logic = runtimeMachine.provide({
      actors: {
        bus: busLogic(this.eventBus, report),
        startup: fromPromise(() => this.startup()),
        shutdown: fromPromise(() => this.shutdown()),
      },
      actions: {
        reportActorFailure: ({ event }) => {
          const actorId = event.type.slice('xstate.error.actor.'.length);
          const error = (event as { error?: unknown }).error;
          const failure: ActorFailure = { actorId, error };
          const reached = this.eventBus.publish(
            'runtime.actor.failed' as keyof E & string,
            failure as E[keyof E & string],
          );
          if (this.onError) this.onError(error, `actor '${actorId}' failed`);
          else if (reached === 0) console.error(`keel: actor '${actorId}' failed:`, error);
        },
      },
    });
    this.system = createActor(logic, {
      clock: this.clock,
      inspect: options.inspect,
      id: 'runtime',
      systemId: 'runtime',
    });
    this.system.subscribe({ error: (error) => this.report(error, 'the runtime actor failed') });
    const telemetry = telemetrySupport?.attach(this, options.metrics);
    this.metrics = telemetry?.metrics;
    this.host = this.makeHost(report, telemetry?.hooks);
    // Durable subscriptions (issue #16.5): started first, stopped last (after their queues).
    const self = this;
    const durable: DurableSubscriptions = new DurableSubscriptions(
      {
        store: this.store,
        clock: this.clock,
        report,
        whenRunning: (what) => this.whenRunning(what),
        publish: (topic, payload) => this.eventBus.publish(topic as keyof E & string, payload as E[keyof E & string]),
        get state() {
          return self.state;
        },
        queue: (name, o) => this.queue(name, o),
      },
      busOptions,
      (record) => setRecorder(record),
    );
    const setRecorder = this.eventBus.attachDurable(durable);
    this.addComponent(durable.component);
    for (const fn of watchers) fn(this);
    this.viewer = options.viewer === undefined ? undefined : viewerSupport?.attach(this, options.viewer);
    this.system.start();
  }

  /** The lifecycle state of the runtime. */
  get state(): RuntimeState {
    return this.snapshot().value as RuntimeState;
  }

  /** Opens the store, resumes durable work and starts workers. Safe to call twice. */
  start(): Promise<void> {
    if (this.starting) return this.starting;
    const value = this.state;
    if (value === 'stopping' || value === 'stopped') {
      return Promise.reject(new KeelError('RUNTIME_STOPPED', 'start(): this runtime was stopped; create a new one'));
    }
    const started = (async () => {
      this.system.send({ type: 'runtime.start' });
      const s = await untilSnapshot<RuntimeSnapshot>(this.system, (s) => s.value !== 'starting');
      if (s.value === 'running') return;
      if (s.value === 'idle') {
        this.starting = undefined;
        throw s.context.startError;
      }
      throw new KeelError('RUNTIME_STOPPED', 'start(): the runtime was stopped while starting');
    })();
    this.starting = started;
    return started;
  }

  /** Stops taking work, lets active work finish, persists and clears every timer. Safe to call twice. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.system.send({ type: 'runtime.stop' });
      const s = await untilSnapshot<RuntimeSnapshot>(this.system, (s) => s.status !== 'active');
      if (s.context.stopError !== undefined) throw s.context.stopError;
    })();
    return this.stopping;
  }

  /** The circuit breaker called `name`; the same breaker for the same name. */
  breaker(name: string, options?: BreakerOptions): Breaker {
    return breakerFor(this, name, options);
  }

  /** The task queue called `name`. */
  queue(name: string, options?: QueueOptions): Queue {
    return queueFor(this, name, options);
  }

  /** Registers the orchestrated saga `name`; unfinished runs of it resume on `start()`. */
  saga<const TSteps extends readonly SagaStep[]>(name: string, options: SagaOptions<TSteps>): Saga<TSteps> {
    return sagaFor(this, name, options);
  }

  /**
   * Enqueues one task on `options.queue` per slot of a cron expression or an
   * interval, exactly once per slot across every process sharing the store.
   * The same name with another definition replaces the schedule.
   */
  schedule(name: string, options: ScheduleOptions): Schedule {
    return scheduleFor(this, name, options);
  }

  /** Every schedule in the store, with the next slot each one will handle. */
  schedules(): Promise<ScheduleInfo[]> {
    return listSchedules(this);
  }

  /** Spawns an actor into the runtime's system (a child of the root); it can publish and subscribe through the bus. */
  spawn<L extends AnyActorLogic>(logic: L, options: SpawnOptions = {}): AnyActorRef {
    const id = options.id ?? `actor-${++spawnCount}`;
    // Own keys only: `children` is a plain object, so an id like `__proto__` or `toString` would read Object.prototype.
    if (Object.hasOwn(this.snapshot().children, id)) {
      throw new KeelError('DUPLICATE_NAME', `spawn(): an actor with id '${id}' already runs in this runtime`);
    }
    if (this.snapshot().status !== 'active') {
      throw new KeelError('RUNTIME_STOPPED', `spawn('${id}'): this runtime was stopped`);
    }
    this.system.send({ type: 'runtime.spawn', logic, id, systemId: options.systemId, input: options.input });
    const children = this.snapshot().children;
    const ref = Object.hasOwn(children, id) ? (children[id] as AnyActorRef | undefined) : undefined;
    if (!ref) throw new KeelError('RUNTIME_STOPPED', `spawn('${id}'): the runtime did not take the actor`);
    return ref;
  }

  /**
   * Resolves once the runtime runs (waiting out a start in progress); rejects
   * with `NOT_STARTED` before `start()` and `RUNTIME_STOPPED` once stopping.
   * `what` names the caller in the message, e.g. `queue('sync').enqueue`.
   */
  async whenRunning(what: string): Promise<void> {
    if (this.state === 'starting') await untilSnapshot<RuntimeSnapshot>(this.system, (s) => s.value !== 'starting');
    const state = this.state;
    if (state === 'running') return;
    if (state === 'idle')
      throw new KeelError('NOT_STARTED', `${what}: call rt.start() first (the store is not open yet)`);
    throw new KeelError('RUNTIME_STOPPED', `${what}: the runtime is ${state}`);
  }

  /** @internal registers work that must start with the runtime and finish before it stops. */
  addComponent(component: Component): void {
    this.components.push(component);
    if (this.state === 'running')
      void component.start?.().catch((e) => this.report(e, `${component.kind} '${component.name}' failed to start`));
  }

  /** @internal forgets a component that ended before the runtime (a closed queue, a removed schedule). */
  removeComponent(component: Component): void {
    const i = this.components.indexOf(component);
    if (i >= 0) this.components.splice(i, 1);
  }

  /** @internal a failure with no caller to throw to. */
  report(error: unknown, detail: string): void {
    if (this.onError) this.onError(error, detail);
    else console.error(`keel: ${detail}:`, error);
  }

  private makeHost(
    report: (error: unknown, detail: string) => void,
    observe: TelemetryHooks | undefined,
  ): Runtime<E>['host'] {
    const rt = this;
    return {
      ...(observe !== undefined && { observe }),
      store: this.store,
      clock: this.clock,
      publish: (topic, payload, options) =>
        this.eventBus.publish(topic as keyof E & string, payload as E[keyof E & string], options),
      subscribe: (topic, handler) => this.eventBus.subscribe(topic as keyof E & string, handler),
      report,
      whenRunning: (what) => this.whenRunning(what),
      get state() {
        return rt.state;
      },
      inspected: this.inspected,
      system: this.system,
      spawn: (logic, options) => this.spawn(logic, options),
      breaker: (name) => this.breaker(name),
    };
  }

  private snapshot(): RuntimeSnapshot {
    return this.system.getSnapshot();
  }

  private async startup(): Promise<void> {
    this.opening = this.store.open();
    await this.opening;
    if (isBusBridge(this.store)) {
      this.unbridge = await this.store.bridgeBus(this.eventBus as never, (e, d) => this.report(e, d));
    }
    for (const c of this.components) await c.start?.();
  }

  private async shutdown(): Promise<void> {
    // A stop during start waits for the store to finish opening, so no handle leaks.
    await this.opening?.catch(() => {});
    let failure: unknown;
    for (const c of [...this.components].reverse()) {
      try {
        await c.stop?.();
      } catch (error) {
        failure ??= error;
      }
    }
    try {
      await this.unbridge?.();
    } catch (error) {
      failure ??= error;
    }
    this.system.getSnapshot().children.bus?.send({ type: 'bus.close' });
    try {
      await this.store.close();
    } catch (error) {
      failure ??= error;
    }
    if (failure !== undefined) throw failure;
  }
}

/** An option served by a layer above the runtime: refused when that layer was not wired in, else checked by it. */
function checkLayerOption(
  option: string,
  value: unknown,
  support: { check(options: unknown): void } | undefined,
  layer: string,
): void {
  if (value === undefined) return;
  if (!support) {
    throw invalidOptions(
      'createRuntime',
      option,
      `needs ${layer}: create the runtime with createRuntime() from 'keel'`,
    );
  }
  support.check(value);
}

function checkStore(store: unknown): void {
  if (store === undefined) return;
  const s = store as Store;
  if (typeof s !== 'object' || s === null || typeof s.open !== 'function' || typeof s.close !== 'function') {
    throw invalidOptions('createRuntime', 'store', 'must be a store (memoryStore(), sqliteStore(), postgresStore())');
  }
}

function checkClock(clock: unknown): void {
  if (clock === undefined) return;
  const c = clock as Clock;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.now !== 'function' ||
    typeof c.setTimeout !== 'function' ||
    typeof c.clearTimeout !== 'function'
  ) {
    throw invalidOptions('createRuntime', 'clock', 'must have now(), setTimeout() and clearTimeout()');
  }
  if (c.afterTurn !== undefined && typeof c.afterTurn !== 'function') {
    throw invalidOptions('createRuntime', 'clock.afterTurn', 'must be a function when given');
  }
}

/** Creates a keel runtime with the given viewer and telemetry support. Nothing runs until `start()`; `stop()` releases every timer and handle. */
export function createRuntimeWith<E extends EventMap = Record<string, any>>(
  options: RuntimeOptions = {},
  viewerSupport?: ViewerSupport,
  telemetrySupport?: TelemetrySupport,
): Runtime<E> {
  return new Runtime<E>(options, viewerSupport, telemetrySupport);
}
