import type { ViewerSupport } from '../runtime/createRuntime.js';
import { attachViewer, checkViewerOptions } from './attach.js';

/** The viewer as `createRuntime({ viewer })` uses it: checks the option, serves the runtime from its start to its stop. */
export const viewerSupport: ViewerSupport = {
  check: checkViewerOptions,
  attach: (rt, options) => attachViewer(rt, options),
};
