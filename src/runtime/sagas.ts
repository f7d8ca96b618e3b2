import { resolveSaga, type SagaOptions, type SagaStep } from '../actors/saga/definition.js';
import type { SagaFamily } from '../actors/saga/runner.js';
import { createSaga, type Saga } from '../actors/saga/saga.js';
import type { RuntimeParts } from './parts.js';

export type { Saga } from '../actors/saga/saga.js';

import { KeelError } from '../core/errors.js';

/** Per runtime, the runners of each saga name's versions. */
const registries = new WeakMap<RuntimeParts, Map<string, SagaFamily>>();

/**
 * Registers the saga `name` in `rt`; its unfinished runs resume on `rt.start()`.
 * A name can be registered once per version: versions of one name live side by
 * side, each saga finishing on the version it started on.
 */
export function sagaFor<const TSteps extends readonly SagaStep[]>(
  rt: RuntimeParts,
  name: string,
  options: SagaOptions<TSteps>,
): Saga<TSteps> {
  let sagas = registries.get(rt);
  if (!sagas) registries.set(rt, (sagas = new Map()));
  const def = resolveSaga(name, options);
  let family = sagas.get(name);
  // A second definition of a name says which version it is: an unversioned one would be a mistake, not an upgrade.
  if (family && (!def.versioned || family.has(def.version))) {
    throw new KeelError(
      'DUPLICATE_NAME',
      `saga('${name}'): a saga with this name and version [${def.version}] is already registered in this runtime; give the new definition another version ({ version })`,
    );
  }
  const store = rt.host.store as unknown as Record<string, unknown>;
  const needed = ['saveSaga', 'loadSaga', 'unfinishedSagas', 'sendSagaSignal', 'sagaSignals'];
  const missing = needed.filter((m) => typeof store[m] !== 'function');
  if (missing.length > 0) {
    throw new KeelError(
      'INVALID_OPTIONS',
      `saga('${name}'): the runtime's ${rt.host.store.kind} store cannot keep sagas (no ${missing.join('/')})`,
    );
  }
  if (!family) sagas.set(name, (family = new Map()));
  const all = sagas;
  const { saga, component } = createSaga<TSteps>(rt.host, def, family, (n) => all.get(n));
  rt.addComponent(component);
  let named = handles.get(rt);
  if (!named) handles.set(rt, (named = new Map()));
  named.set(name, saga as unknown as Saga);
  return saga;
}

/** Per runtime, the newest handle of each saga name (the console acts through it). */
const handles = new WeakMap<RuntimeParts, Map<string, Saga>>();

/** The sagas registered in `rt` so far, by name: the newest version's handle (signal and cancel reach every version). */
export function sagasOf(rt: RuntimeParts): ReadonlyMap<string, Saga> {
  return handles.get(rt) ?? new Map();
}
