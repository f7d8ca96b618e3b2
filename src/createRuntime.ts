import type { EventMap } from './actors/bus/bus.js';
import { createRuntimeWith, type Runtime, type RuntimeOptions } from './runtime/createRuntime.js';
import { telemetrySupport } from './telemetry/support.js';
import { serveMetrics } from './viewer/server.js';
import { viewerSupport } from './viewer/support.js';

// The metrics port reuses the viewer's server code (its Host check); telemetry never imports the viewer itself.
const telemetry = telemetrySupport({ serveMetrics });

/**
 * Creates a keel runtime. Nothing runs until `start()`; `stop()` releases every
 * timer and handle. Wired here, above `src/runtime`, so the runtime can serve
 * the viewer (`{ viewer }`) and export metrics and traces (`{ metrics }`,
 * `src/telemetry`) without the runtime layer importing them.
 */
export function createRuntime<E extends EventMap = Record<string, any>>(options: RuntimeOptions = {}): Runtime<E> {
  return createRuntimeWith<E>(options, viewerSupport, telemetry);
}
