import type { Runtime } from '../runtime/createRuntime.js';
import { attachViewer, checkViewerOptions, type Viewer, type ViewerOptions } from './attach.js';

export type { Viewer, ViewerOptions } from './attach.js';

type Watcher = (rt: Runtime<any>) => void;
const watchers = new Set<Watcher>();

/**
 * Calls `fn` with every runtime created from now on, until the returned
 * function is called. This is how `keel demo` and `keel inspect` see the
 * runtimes that the example scenarios create for themselves.
 */
export function watchNewRuntimes(fn: Watcher): () => void {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

/** For `createRuntime`: will the runtime be watched? Then every saga must run as a visible actor. */
export function willWatch(viewer: ViewerOptions | undefined): boolean {
  if (viewer !== undefined) checkViewerOptions(viewer);
  return viewer !== undefined || watchers.size > 0;
}

/** For `createRuntime`, once its system exists: hands the runtime to the watchers and attaches its own viewer. */
export function watchNewRuntime(rt: Runtime<any>, viewer: ViewerOptions | undefined): Viewer | undefined {
  for (const fn of watchers) fn(rt);
  return viewer === undefined ? undefined : attachViewer(rt, viewer);
}
