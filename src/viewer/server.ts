import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsSource } from '../core/telemetry.js';
import { viewerAssets } from './assets.generated.js';
import { isBrowsePath, serveBrowse } from './browseRoutes.js';
import { type HostGuard, hostGuard } from './hostGuard.js';
import type { ViewerHub } from './hub.js';
import type { OpsSource } from './ops.js';
import { OPS_POLL_MS, OpsChannel, serveAction, serveOps } from './opsChannel.js';

/** Where the viewer listens. */
export interface ServeOptions {
  /** 0 picks a free port. */
  port: number;
  /**
   * Default 127.0.0.1: the viewer shows internals and has no authentication, so it stays on this machine.
   * It answers only requests whose `Host` names it (see `hostGuard.ts`): no DNS rebinding.
   */
  host?: string;
  /** Serves `GET /metrics` from this source (`createRuntime({ metrics })`). */
  metrics?: MetricsSource;
  /** The operations panel's source (queues, sagas, breakers) and who performs its actions. */
  ops?: OpsSource;
  /** Turns the operator actions on (`POST /actions`, see `actionGuard.ts`); without it the console is read-only. */
  adminToken?: string;
  /** How often the operations are read while a page is open; default 1000. */
  opsPollMs?: number;
}

/** A listening viewer server. */
export interface ViewerServer {
  readonly url: string;
  /** Resolves when a page is connected (at once if one is). */
  firstClient(): Promise<void>;
  close(): Promise<void>;
}

// The page, its script and its style ship inside keel's code (see scripts/embed-viewer.ts): the viewer
// works offline and from an app bundle, where no `assets/` folder sits beside the code.
const asset = (name: string) => {
  const body = viewerAssets[name];
  if (body === undefined) throw new Error(`viewer asset ${name} was not embedded; run \`npm run embed\``);
  return body;
};
/** What each asset path serves: the file in `assets/` and its content type. */
const files: Record<string, { name: string; type: string }> = {
  '/': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/viewer.js': { name: 'viewer.js', type: 'text/javascript; charset=utf-8' },
  '/viewer.css': { name: 'viewer.css', type: 'text/css; charset=utf-8' },
  '/ops.js': { name: 'ops.js', type: 'text/javascript; charset=utf-8' },
  '/browse.js': { name: 'browse.js', type: 'text/javascript; charset=utf-8' },
};

/**
 * Serves the viewer: the page (`/`), its assets, the hub's current picture as
 * JSON (`/state`) and the live stream as server-sent events (`/events`: the
 * full picture first, then every change).
 */
export async function serveViewer(hub: ViewerHub, options: ServeOptions): Promise<ViewerServer> {
  const bodies = Object.fromEntries(
    Object.entries(files).map(([path, { name, type }]) => [path, { body: asset(name), type }]),
  );
  const streams = new Set<ServerResponse>();
  let waiting: Array<() => void> = [];
  const bindHost = options.host ?? '127.0.0.1';
  // Set once listening (the bound address decides it); nothing is answered before.
  let guard: HostGuard | undefined;
  const ops =
    options.ops &&
    new OpsChannel(options.ops, options.adminToken !== undefined, options.opsPollMs ?? OPS_POLL_MS, (e) =>
      console.error('keel viewer: reading the operations failed:', e),
    );
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const mark = url.indexOf('?');
    const [path, search] = mark < 0 ? [url, ''] : [url.slice(0, mark), url.slice(mark + 1)];
    // First, for every method and path (the event stream too): a rebound name must learn nothing, not even a 404.
    if (!guard?.allows(req.headers.host)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      return void res.end(`forbidden host: this viewer answers only to ${guard?.accepted ?? 'nothing yet'}\n`);
    }
    if (path === '/actions') {
      if (!ops) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return void serveAction(ops, options.adminToken, guard, req, res);
    }
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (path === '/ops' && ops) return void serveOps(ops, res);
    // The lists and details are read-only: the Host check above is their guard, like the page's; no token.
    if (isBrowsePath(path) && ops?.source.browse) {
      return void serveBrowse(ops.source.browse, path, new URLSearchParams(search), res);
    }
    const file = bodies[path];
    if (file !== undefined) {
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' });
      return void res.end(file.body);
    }
    if (path === '/metrics' && options.metrics) return void sendMetrics(options.metrics, res);
    if (path === '/state') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify(hub.hello()));
    }
    if (path !== '/events') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const write = (m: unknown) => res.write(`data: ${JSON.stringify(m)}\n\n`);
    write(hub.hello());
    const offHub = hub.listen(write);
    const offOps = ops?.listen(write);
    const off = () => {
      offHub();
      offOps?.();
    };
    // A comment line now and then keeps proxies and idle timeouts from closing a quiet stream.
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000).unref();
    streams.add(res);
    for (const resolve of waiting) resolve();
    waiting = [];
    req.on('close', () => {
      off();
      clearInterval(ping);
      streams.delete(res);
    });
  });
  const listening = await listen(server, options.port, bindHost);
  guard = listening.guard;
  return {
    url: `${listening.origin}/`,
    firstClient: () => (streams.size > 0 ? Promise.resolve() : new Promise<void>((r) => waiting.push(r))),
    close: () =>
      new Promise<void>((resolve) => {
        ops?.close();
        for (const res of streams) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Answers a scrape: the source's text, or a 500 naming what failed (Prometheus records the scrape as failed). */
function sendMetrics(source: MetricsSource, res: ServerResponse): void {
  source.scrape().then(
    (text) => {
      res.writeHead(200, { 'content-type': source.contentType, 'cache-control': 'no-store' });
      res.end(text);
    },
    (error: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
    },
  );
}

/** A listening metrics server. */
export interface MetricsServer {
  /** The address of `/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves only `GET /metrics` (`createRuntime({ metrics: { port } })` without a
 * viewer), on 127.0.0.1 unless `host` says otherwise, with the viewer's `Host`
 * check: a rebound name learns nothing.
 */
export async function serveMetrics(source: MetricsSource, options: ServeOptions): Promise<MetricsServer> {
  const bindHost = options.host ?? '127.0.0.1';
  let guard: HostGuard | undefined;
  const server = createServer((req, res) => {
    if (!guard?.allows(req.headers.host)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(`forbidden host: this server answers only to ${guard?.accepted ?? 'nothing yet'}\n`);
    }
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if ((req.url ?? '/').split('?')[0] !== '/metrics') {
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: see /metrics\n');
    }
    sendMetrics(source, res);
  });
  const listening = await listen(server, options.port, bindHost);
  guard = listening.guard;
  return {
    url: `${listening.origin}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Listens on `port` at `bindHost`; resolves with the Host check for the
 * address actually bound (it decides which names are safe) and the origin.
 */
async function listen(server: Server, port: number, bindHost: string): Promise<{ guard: HostGuard; origin: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, bindHost, () => resolve());
  });
  const { address, port: bound } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return { guard: hostGuard(bindHost, address), origin: `http://${host}:${bound}` };
}
