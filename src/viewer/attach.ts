import type { AnyActorRef } from 'xstate';
import { invalidOptions } from '../core/errors.js';
import { describeValue } from '../core/options.js';
import type { MetricsSource } from '../core/telemetry.js';
import type { Runtime, ViewerOptions as RuntimeViewerOptions } from '../runtime/createRuntime.js';
import { type HubLimits, ViewerHub } from './hub.js';
import { runtimeOps } from './runtimeOps.js';
import { serveViewer, type ViewerServer } from './server.js';

/** Options of the live viewer (`createRuntime({ viewer })`, `attachViewer`). */
export interface ViewerOptions extends HubLimits, RuntimeViewerOptions {}

/** A live viewer: a page on localhost showing every actor of the runtimes it watches. */
export interface Viewer {
  readonly hub: ViewerHub;
  /** The page's address once listening. */
  readonly url: string | undefined;
  /** Starts serving; resolves with the page's address. Safe to call twice. */
  listen(): Promise<string>;
  /** Shows this runtime's actors from now until it stops. */
  watch(rt: Runtime<any>, label?: string): void;
  /** Resolves when a page is connected to the live stream. */
  firstClient(): Promise<void>;
  /** Stops serving and closes every open page's stream. */
  close(): Promise<void>;
}

/** Throws `INVALID_OPTIONS` unless `options` are viewer options. */
export function checkViewerOptions(options: unknown): asserts options is ViewerOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalidOptions('createRuntime', 'viewer', 'must be an object like { port: 4400 }');
  }
  const port = (options as ViewerOptions).port;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw invalidOptions('createRuntime', 'viewer.port', `must be an integer from 0 to 65535, got ${String(port)}`);
  }
  const host = (options as ViewerOptions).host;
  // The host also decides which Host headers the viewer answers (see hostGuard.ts), so it must be a plain name or address.
  if (host !== undefined && (typeof host !== 'string' || !/^[a-z0-9_.:-]+$/i.test(host))) {
    throw invalidOptions(
      'createRuntime',
      'viewer.host',
      `must be a host name or IP address like '127.0.0.1', 'localhost' or '::1', got ${describeValue(host)}`,
    );
  }
  checkAdminToken('createRuntime', 'viewer.adminToken', (options as ViewerOptions).adminToken);
}

/** The shortest admin token accepted: a guessable token would let anyone who can reach the port act. */
export const MIN_ADMIN_TOKEN = 16;

/** Throws `INVALID_OPTIONS` unless `token` is undefined or a usable admin token (never echoing a secret). */
export function checkAdminToken(owner: string, option: string, token: unknown): void {
  if (token === undefined) return;
  if (typeof token !== 'string') {
    throw invalidOptions(
      owner,
      option,
      `must be a string of at least ${MIN_ADMIN_TOKEN} characters, got ${describeValue(token)}`,
    );
  }
  if (token.length < MIN_ADMIN_TOKEN || /\s/.test(token)) {
    throw invalidOptions(
      owner,
      option,
      `must be at least ${MIN_ADMIN_TOKEN} characters without spaces, got one of ${token.length} characters${/\s/.test(token) ? ' with spaces' : ''}`,
    );
  }
}

let runtimeCount = 0;

/** Creates a viewer that is not listening yet; `metrics` adds `GET /metrics`. */
export function createViewer(options: ViewerOptions = {}, metrics?: MetricsSource): Viewer {
  checkViewerOptions(options);
  const hub = new ViewerHub(options);
  // The runtimes shown, by label: the operations panel reads and acts on the running ones.
  const runtimes = new Map<string, Runtime<any>>();
  const ops = runtimeOps(() => runtimes);
  let server: Promise<ViewerServer> | undefined;
  let listening: ViewerServer | undefined;
  return {
    hub,
    get url() {
      return listening?.url;
    },
    async listen() {
      server ??= serveViewer(hub, {
        port: options.port ?? 0,
        ...(options.host ? { host: options.host } : {}),
        ...(metrics && { metrics }),
        ops,
        ...(options.adminToken !== undefined && { adminToken: options.adminToken }),
      });
      listening = await server;
      return listening.url;
    },
    watch(rt, label = `runtime ${++runtimeCount}`) {
      const shown = watchRuntime(hub, rt, label, () => runtimes.delete(shown));
      runtimes.set(shown, rt);
    },
    async firstClient() {
      await this.listen();
      await listening?.firstClient();
    },
    async close() {
      const s = server;
      server = undefined;
      listening = undefined;
      hub.close();
      // A server that never started listening (port taken) has nothing to close.
      await (await s?.catch(() => undefined))?.close();
    },
  };
}

/**
 * Shows a runtime in its own viewer: serves the page from `rt.start()` and
 * stops serving on `rt.stop()`. Or, given a `Viewer`, adds the runtime to that
 * one (which the caller closes). Sagas run as visible actors only when the
 * runtime was created inspected; `createRuntime({ viewer })` arranges that.
 */
export function attachViewer(rt: Runtime<any>, options: ViewerOptions | Viewer = {}): Viewer {
  if ('hub' in options) {
    options.watch(rt);
    return options;
  }
  const viewer = createViewer(options, rt.metrics);
  viewer.watch(rt);
  rt.addComponent({
    kind: 'viewer',
    name: 'viewer',
    start: async () => {
      await viewer.listen();
    },
    stop: () => viewer.close(),
  });
  return viewer;
}

/** Feeds the hub with the runtime's inspection events and its task transitions, until the runtime stops. */
function watchRuntime(hub: ViewerHub, rt: Runtime<any>, name: string, stopped: () => void): string {
  const label = hub.addRuntime(name, actorsOf(rt));
  // `system.inspect` adds an observer to a running system, so a viewer can watch a runtime it did not create.
  const inspection = rt.system.system.inspect((ev) => hub.inspect(label, ev));
  const offTasks = rt.bus.subscribe('task.>', (_payload, event) => hub.taskEvent(label, event.type));
  const done = () => {
    inspection.unsubscribe();
    offTasks();
    hub.stopRuntime(label, rt.system as AnyActorRef);
    stopped();
  };
  if (rt.system.getSnapshot().status !== 'active') queueMicrotask(done);
  else rt.system.subscribe({ complete: done, error: done });
  return label;
}

/** Every actor already in the runtime's system: registered ones (breakers are not children) and all children. */
function actorsOf(rt: Runtime<any>): AnyActorRef[] {
  const found = new Map<string, AnyActorRef>();
  const visit = (ref: AnyActorRef) => {
    if (found.has(ref.sessionId)) return;
    found.set(ref.sessionId, ref);
    const children = (ref.getSnapshot() as { children?: Record<string, AnyActorRef> }).children ?? {};
    for (const child of Object.values(children)) if (child) visit(child);
  };
  visit(rt.system as AnyActorRef);
  for (const ref of Object.values(rt.system.system.getAll()) as AnyActorRef[]) visit(ref);
  return [...found.values()];
}
