import { createActor } from 'xstate';
import { invalidOptions, KeelError } from '../../core/errors.js';
import { type BreakerSettings, type BreakerState, breakerMachine } from '../../machines/breaker.js';
import { isFleetBreakers } from '../../stores/store.js';
import type { Component, Host } from '../host.js';
import type { CallOptions } from './callOptions.js';
import { type BreakerActor, type BreakerStats, type Guarded, GuardedCalls } from './calls.js';
import { FleetLink } from './fleet.js';
import type { ResolvedBreakerOptions } from './options.js';

/** A circuit breaker guarding calls to one dependency (DESIGN.md, "Circuit breaker"). */
export interface Breaker {
  readonly name: string;
  /**
   * Runs `fn` unless the circuit refuses it (`CircuitOpenError`). A call slower
   * than `callTimeoutMs` fails with `CallTimeoutError` and its `signal` aborts;
   * other errors are rethrown unchanged. Each call gets its own signal when `fn`
   * declares the parameter (`fn.length > 0`, as in `(signal) => ...`); a
   * function with `fn.length === 0` (no parameter, only `...rest`, a defaulted
   * first parameter, `vi.fn().mockImplementation(...)`) gets a shared signal
   * that never aborts: creating an `AbortSignal` costs ~3 µs in Node 20, about
   * ten times the rest of a call.
   *
   * With `options`: `retry` retries failures while the circuit is closed and
   * waits out a refusal only up to `retry.maxDelayMs`; `fallback(error)`
   * answers instead of a refusal or a failure (`callOptions.ts`).
   */
  call<T>(fn: Guarded<T>, options?: CallOptions<T>): Promise<T>;
  /** `'closed' | 'open' | 'halfOpen' | 'isolated'`, read from the actor. */
  readonly state: BreakerState;
  /**
   * Milliseconds until a call would be admitted: 0 when closed or when halfOpen
   * has a free trial slot; while open, the rest of the open period (at least 1);
   * while halfOpen is full, until the earliest trial times out (at most
   * `resetTimeoutMs`); `Infinity` while isolated (wait for `breaker.<name>.closed`).
   */
  readonly retryAfterMs: number;
  /** Counts of calls, successes, failures, timeouts, rejections, slow calls, bulkhead refusals since creation. */
  readonly stats: BreakerStats;
  /** Forces the circuit open (state `isolated`) until `reset()`. */
  isolate(): void;
  /** Forces the circuit closed and forgets the failures seen. */
  reset(): void;
  /** The breaker's XState actor (system id `breaker.<name>`). */
  readonly actor: BreakerActor;
  /** Stops the actor, frees its timers and the fleet link, refuses later calls; the runtime forgets the name. */
  dispose(): void;
}

/** What a breaker needs of its runtime. */
export type BreakerHost = Pick<Host, 'clock' | 'report' | 'state' | 'system' | 'store' | 'publish' | 'observe'>;

/**
 * Creates the breaker `name` with resolved options: its machine runs as actor
 * `breaker.<name>` in the runtime's system; the component stops it with the runtime.
 */
export function createBreaker(
  host: BreakerHost,
  name: string,
  opts: ResolvedBreakerOptions,
  onDispose: () => void = () => {},
): { breaker: GuardedCalls; component: Component } {
  const store = host.store;
  if (opts.scope === 'fleet' && !isFleetBreakers(store)) {
    throw invalidOptions(
      `breaker('${name}')`,
      'scope',
      `'fleet' needs a store shared by processes (postgresStore); this runtime's store is ${store.kind}`,
    );
  }
  const actor = startActor(host, `breaker.${name}`, settingsOf(opts));
  const breaker = new GuardedCalls(
    name,
    opts,
    actor,
    host.clock,
    (error, detail) => host.report(error, detail),
    () => {
      stopActor(actor);
      onDispose();
    },
    host.observe,
  );
  if (opts.scope === 'fleet' && isFleetBreakers(store)) {
    breaker.fleet = new FleetLink(name, opts, store, actor, {
      clock: host.clock,
      publish: (topic, payload) => host.publish(topic, payload, { source: `breaker.${name}` }),
      report: (error, detail) => host.report(error, detail),
      openedAt: (at) => breaker.openedAt(at),
    });
  }
  const component: Component = {
    kind: 'breaker',
    name,
    // The fleet link needs the open store; until then the breaker counts locally.
    start: async () => breaker.fleet?.start(),
    stop: async () => {
      breaker.stop();
      stopActor(actor);
    },
  };
  return { breaker, component };
}

/**
 * Starts the breaker's actor in the runtime's actor system, with the root as
 * its parent: it shares the system's clock, scheduler, registry (`system.get`)
 * and inspection, and its failures reach the root like a child's. It is not
 * added to the root snapshot's `children` (what `rt.spawn` does): XState copies
 * that map on every spawn and stop, which makes N breakers cost O(N²)
 * (10,000 took 19 s); so the breaker's component stops it instead.
 */
function startActor(rt: BreakerHost, id: string, input: BreakerSettings): BreakerActor {
  if (rt.state === 'stopping' || rt.state === 'stopped') {
    throw new KeelError('RUNTIME_STOPPED', `breaker('${input.name}'): this runtime was stopped`);
  }
  const actor = createActor(breakerMachine, { parent: rt.system, id, systemId: id, input });
  actor.start();
  return actor;
}

function stopActor(actor: BreakerActor): void {
  // `stop()` refuses actors with a parent; `_stop` is what XState's own `stopChild` uses.
  (actor as unknown as { _stop?: () => void })._stop?.();
}

// Only plain data goes into the machine's context, so snapshots stay serializable for inspection.
function settingsOf(o: ResolvedBreakerOptions): BreakerSettings {
  return {
    name: o.name,
    failureThreshold: o.failureThreshold,
    failureRate: o.failureRate,
    slowCallRate: o.slowCallRate,
    minimumCalls: o.minimumCalls,
    windowSize: o.windowSize,
    resetTimeoutMs: o.resetTimeoutMs,
    maxResetTimeoutMs: o.maxResetTimeoutMs,
    backoffMultiplier: o.backoffMultiplier,
    halfOpenMaxCalls: o.halfOpenMaxCalls,
    successThreshold: o.successThreshold,
  };
}
