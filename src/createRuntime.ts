import type { EventMap } from './actors/bus/bus.js';
import { createRuntimeWith, type Runtime, type RuntimeOptions } from './runtime/createRuntime.js';
import { viewerSupport } from './viewer/support.js';

/**
 * Creates a keel runtime. Nothing runs until `start()`; `stop()` releases every
 * timer and handle. Wired here, above `src/runtime`, so the runtime can serve
 * the viewer (`{ viewer }`) without the runtime layer importing it.
 */
export function createRuntime<E extends EventMap = Record<string, any>>(options: RuntimeOptions = {}): Runtime<E> {
  return createRuntimeWith<E>(options, viewerSupport);
}
