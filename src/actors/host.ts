import type { AnyActorLogic, AnyActorRef } from 'xstate';
import type { Clock } from '../core/clock.js';
import type { TelemetryHooks } from '../core/telemetry.js';
import type { Store } from '../stores/store.js';

/** The runtime's lifecycle states. */
export type LifecycleState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * What a pattern may use of the runtime that hosts it. The runtime builds one
 * and hands each pattern only the part it needs (`Pick<Host, ...>`); a pattern
 * never sees the runtime itself, so nothing below `src/runtime` imports it.
 */
export interface Host {
  /** The runtime's store (open once `whenRunning` resolves). */
  readonly store: Store;
  /** The runtime's clock: every timer of a pattern runs on it. */
  readonly clock: Clock;
  /** Publishes on the runtime's bus; returns the number of subscribers reached. */
  publish(topic: string, payload: unknown, options?: { source?: string }): number;
  /** Subscribes to the runtime's bus; returns the function that unsubscribes. */
  subscribe(topic: string, handler: (payload: any) => unknown): () => void;
  /** A failure with no caller to throw to (the runtime's `onError`). */
  report(error: unknown, detail: string): void;
  /** Resolves once the runtime runs; rejects with `NOT_STARTED` / `RUNTIME_STOPPED`. `what` names the caller. */
  whenRunning(what: string): Promise<void>;
  /** Where the runtime is in its lifecycle. */
  readonly state: LifecycleState;
  /** True when an inspector or viewer watches the runtime. */
  readonly inspected: boolean;
  /** The root actor of the runtime's system: the parent of pattern actors started outside its `children`. */
  readonly system: AnyActorRef;
  /** Spawns `logic` as a child of the root (listed in its `children`); throws when the runtime stopped. */
  spawn(logic: AnyActorLogic, options: { id: string; systemId?: string; input?: unknown }): AnyActorRef;
  /** Metrics and traces (`src/telemetry`), when the runtime has them: patterns call its hooks only when set. */
  readonly observe?: TelemetryHooks;
}

/**
 * Work a pattern must resume at the runtime's start and finish at its stop
 * (queues, sagas). The runtime starts them in creation order and stops them in
 * reverse.
 */
export interface Component {
  readonly kind: string;
  readonly name: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}
