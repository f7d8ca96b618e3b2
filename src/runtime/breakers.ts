import type { Runtime } from './createRuntime.js';
import { KeelError } from './errors.js';

/** Options of `rt.breaker` (see DESIGN.md). */
export interface BreakerOptions {
  [option: string]: unknown;
}

/** A circuit breaker guarding calls to one dependency. */
export interface Breaker {
  readonly name: string;
}

/** Returns the runtime's breaker called `name`, creating it on first use. */
export function breakerFor(_rt: Runtime<any>, name: string, _options?: BreakerOptions): Breaker {
  throw new KeelError('NOT_IMPLEMENTED', `breaker('${name}'): circuit breakers are not built yet`);
}
