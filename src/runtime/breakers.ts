import { type Breaker, createBreaker } from '../actors/breaker/breaker.js';
import type { GuardedCalls } from '../actors/breaker/calls.js';
import {
  type BreakerOptions,
  checkBreakerName,
  checkSameOptions,
  resolveBreakerOptions,
} from '../actors/breaker/options.js';
import type { RuntimeParts } from './parts.js';

export type { Breaker } from '../actors/breaker/breaker.js';
export type { CallOptions } from '../actors/breaker/callOptions.js';
export type { BreakerStats, Guarded } from '../actors/breaker/calls.js';
export type { BreakerOptions } from '../actors/breaker/options.js';
export type { BreakerState } from '../machines/breaker.js';

const registries = new WeakMap<RuntimeParts, Map<string, GuardedCalls>>();

/**
 * Returns the runtime's breaker called `name`, creating it on first use.
 * Asking again with options that differ from the ones it runs with throws `DUPLICATE_NAME`.
 */
export function breakerFor(rt: RuntimeParts, name: string, options?: BreakerOptions): Breaker {
  checkBreakerName(name);
  const resolved = options === undefined ? undefined : resolveBreakerOptions(name, options);
  let registry = registries.get(rt);
  if (!registry) {
    registry = new Map();
    registries.set(rt, registry);
  }
  const existing = registry.get(name);
  if (existing) {
    if (resolved) checkSameOptions(existing.options, resolved);
    return existing;
  }
  const map = registry;
  const { breaker, component } = createBreaker(rt.host, name, resolved ?? resolveBreakerOptions(name), () => {
    // Only this breaker: a new one of the same name may already be registered.
    if (map.get(name) === breaker) map.delete(name);
    // Its component would otherwise stay in the runtime's list until stop (a leak for breakers made per tenant).
    rt.removeComponent(component);
  });
  rt.addComponent(component);
  registry.set(name, breaker);
  return breaker;
}

/** The breakers of `rt` so far, by name (the console acts on them). */
export function breakersOf(rt: RuntimeParts): ReadonlyMap<string, Breaker> {
  return registries.get(rt) ?? new Map();
}
