import { resolveSaga, type SagaOptions, type SagaStep } from '../actors/saga/definition.js';
import type { SagaResult } from '../actors/saga/result.js';
import { type ExecuteOptions, SagaRunner } from '../actors/saga/runner.js';
import type { SagaMachine } from '../machines/saga.js';
import type { Runtime } from './createRuntime.js';
import { KeelError } from './errors.js';

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

const registries = new WeakMap<Runtime<any>, Map<string, Saga<any>>>();

/** Registers the saga `name` in `rt`; its unfinished runs resume on `rt.start()`. A name can be registered once. */
export function sagaFor<const TSteps extends readonly SagaStep[]>(
  rt: Runtime<any>,
  name: string,
  options: SagaOptions<TSteps>,
): Saga<TSteps> {
  let sagas = registries.get(rt);
  if (!sagas) registries.set(rt, (sagas = new Map()));
  if (sagas.has(name)) {
    throw new KeelError(
      'DUPLICATE_NAME',
      `saga('${name}'): a saga with this name is already registered in this runtime`,
    );
  }
  const def = resolveSaga(name, options);
  const store = rt.store as unknown as Partial<Record<'saveSaga' | 'loadSaga' | 'unfinishedSagas', unknown>>;
  if (
    typeof store.saveSaga !== 'function' ||
    typeof store.loadSaga !== 'function' ||
    typeof store.unfinishedSagas !== 'function'
  ) {
    throw new KeelError(
      'INVALID_OPTIONS',
      `saga('${name}'): the runtime's ${rt.store.kind} store cannot keep sagas (no saveSaga/loadSaga/unfinishedSagas)`,
    );
  }
  const runner = new SagaRunner<TSteps>(rt, def);
  const saga: Saga<TSteps> = {
    name,
    machine: runner.machine,
    execute: (input, opts) => runner.execute(input, opts),
    get running() {
      return runner.running;
    },
    stateOf: (id) => runner.stateOf(id),
  };
  sagas.set(name, saga);
  rt.addComponent({ kind: 'saga', name, start: () => runner.resumeAll(), stop: () => runner.stop() });
  return saga;
}
