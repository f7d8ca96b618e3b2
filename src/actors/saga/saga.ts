import type { SagaMachine } from '../../machines/saga.js';
import type { Component } from '../host.js';
import type { ResolvedSaga, SagaStep } from './definition.js';
import type { SagaResult } from './result.js';
import { type ExecuteOptions, type SagaHost, SagaRunner } from './runner.js';

/** An orchestrated saga: `execute` runs it, `machine` is its generated XState machine. */
export interface Saga<TSteps extends readonly SagaStep[] = readonly SagaStep[]> {
  readonly name: string;
  readonly machine: SagaMachine;
  /** Runs the saga with `input`; resolves with how it ended (it rejects only when the runtime stops it or storage fails). */
  execute(input: unknown, options?: ExecuteOptions): Promise<SagaResult<TSteps>>;
  /** How many sagas of this definition run in this runtime now. */
  readonly running: number;
  /** The machine state of saga `id` while it runs in this runtime (`{ running: 'createOrder' }`); undefined otherwise. */
  stateOf(id: string): unknown;
}

/** Creates the saga `name` from its checked definition, and the component that resumes and stops its runs. */
export function createSaga<const TSteps extends readonly SagaStep[]>(
  host: SagaHost,
  def: ResolvedSaga,
): { saga: Saga<TSteps>; component: Component } {
  const name = def.name;
  const runner = new SagaRunner<TSteps>(host, def);
  const saga: Saga<TSteps> = {
    name,
    machine: runner.machine,
    execute: (input, opts) => runner.execute(input, opts),
    get running() {
      return runner.running;
    },
    stateOf: (id) => runner.stateOf(id),
  };
  return { saga, component: { kind: 'saga', name, start: () => runner.resumeAll(), stop: () => runner.stop() } };
}
