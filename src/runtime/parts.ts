import type { Breaker } from '../actors/breaker/breaker.js';
import type { Component, Host } from '../actors/host.js';

/** What the pattern registries (`breakers.ts`, `queues.ts`, `sagas.ts`) need of a runtime. */
export interface RuntimeParts {
  /** What the patterns may use of the runtime. */
  readonly host: Host & { breaker(name: string): Breaker };
  /** Registers work that starts with the runtime and finishes before it stops. */
  addComponent(component: Component): void;
  /** Forgets a component that ended before the runtime (a closed queue, a removed schedule). */
  removeComponent(component: Component): void;
}
