import type { SagaMachine } from '../../machines/saga.js';
import type { Component } from '../host.js';
import type { ResolvedSaga, SagaStep } from './definition.js';
import type { SagaInfo, SagaListOptions, SagaPage } from './info.js';
import type { SagaResult } from './result.js';
import { type ExecuteOptions, type SagaFamily, type SagaHost, SagaRunner } from './runner.js';

/** An orchestrated saga: `execute` runs it, `machine` is its generated XState machine. */
export interface Saga<TSteps extends readonly SagaStep[] = readonly SagaStep[]> {
  readonly name: string;
  /** The definition's version: the one given, or one derived from the step names. */
  readonly version: string;
  readonly machine: SagaMachine;
  /** Runs the saga with `input`; resolves with how it ended (it rejects only when the runtime stops it or storage fails). */
  execute(input: unknown, options?: ExecuteOptions): Promise<SagaResult<TSteps>>;
  /** How many sagas of this definition run in this runtime now. */
  readonly running: number;
  /** The machine state of saga `id` while it runs in this runtime (`{ running: 'createOrder' }`); undefined otherwise. */
  stateOf(id: string): unknown;
  /**
   * Sends the signal `name` (a step's `waitFor`) to the saga `sagaId`, from any
   * runtime sharing the store; kept if the saga has not reached the step yet.
   * `NOT_FOUND` for an unknown saga or signal name, `SAGA_FINISHED` once it ended.
   */
  signal(sagaId: string, name: string, payload?: unknown): Promise<void>;
  /**
   * Cancels the saga `sagaId` from any runtime sharing the store and resolves
   * with how it ended: `cancelled` once what had completed is undone (or how it
   * ended if it completed or was already compensating first). `NOT_FOUND` for
   * an unknown id, `SAGA_FINISHED` (thrown) for a saga that had already ended.
   */
  cancel(sagaId: string, reason?: string): Promise<SagaResult<TSteps>>;
  /**
   * The stored run `sagaId` (any version of this name) while it is retained:
   * `{ id, status, state, input, results, error?, history: [{ state, at, attempt?, error? }] }`.
   * Undefined for an id that never ran or was pruned (a query: no `NOT_FOUND`).
   */
  get(sagaId: string): Promise<SagaInfo | undefined>;
  /** The retained runs of this name, newest first: `{ items, next? }`; pass `next` as `after` for the next page. */
  list(options?: SagaListOptions): Promise<SagaPage>;
}

/**
 * Creates the saga `name` from its checked definition, and the component that
 * resumes and stops its runs; `family` holds the other versions of the name.
 */
export function createSaga<const TSteps extends readonly SagaStep[]>(
  host: SagaHost,
  def: ResolvedSaga,
  family?: SagaFamily,
  sagaNamed?: (name: string) => SagaFamily | undefined,
): { saga: Saga<TSteps>; component: Component } {
  const name = def.name;
  const runner = new SagaRunner<TSteps>(host, def, family, sagaNamed);
  const saga: Saga<TSteps> = {
    name,
    version: def.version,
    machine: runner.machine,
    execute: (input, opts) => runner.execute(input, opts),
    get running() {
      return runner.running;
    },
    stateOf: (id) => runner.stateOf(id),
    signal: (id, signalName, payload) => runner.signal(id, signalName, payload),
    cancel: (id, reason) => runner.cancel(id, reason),
    get: (id) => runner.get(id),
    list: (options) => runner.list(options),
  };
  return { saga, component: { kind: 'saga', name, start: () => runner.resumeAll(), stop: () => runner.stop() } };
}
