import { resolveSaga, type SagaOptions, type SagaStep } from '../actors/saga/definition.js';
import { createSaga, type Saga } from '../actors/saga/saga.js';
import type { RuntimeParts } from './parts.js';

export type { Saga } from '../actors/saga/saga.js';

import { KeelError } from '../core/errors.js';

const registries = new WeakMap<RuntimeParts, Map<string, Saga<any>>>();

/** Registers the saga `name` in `rt`; its unfinished runs resume on `rt.start()`. A name can be registered once. */
export function sagaFor<const TSteps extends readonly SagaStep[]>(
  rt: RuntimeParts,
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
  const store = rt.host.store as unknown as Record<string, unknown>;
  const needed = ['saveSaga', 'loadSaga', 'unfinishedSagas', 'sendSagaSignal', 'sagaSignals'];
  const missing = needed.filter((m) => typeof store[m] !== 'function');
  if (missing.length > 0) {
    throw new KeelError(
      'INVALID_OPTIONS',
      `saga('${name}'): the runtime's ${rt.host.store.kind} store cannot keep sagas (no ${missing.join('/')})`,
    );
  }
  const { saga, component } = createSaga<TSteps>(rt.host, def);
  sagas.set(name, saga);
  rt.addComponent(component);
  return saga;
}
