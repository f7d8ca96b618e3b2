import { lookup } from 'node:dns/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError } from '../../src/index.js';
import { attachViewer, createViewer, type Viewer } from '../../src/viewer/attach.js';
import { hostGuard } from '../../src/viewer/hostGuard.js';
import type { ActorView, ViewerMessage } from '../../src/viewer/hub.js';
import { until } from '../fixtures/wait.js';

const open: Array<{ stop(): Promise<void> } | Viewer> = [];
afterEach(async () => {
  for (const x of open.splice(0)) await ('stop' in x ? x.stop() : x.close());
});

async function state(url: string): Promise<Extract<ViewerMessage, { kind: 'hello' }>> {
  return (await (await fetch(`${url}state`)).json()) as Extract<ViewerMessage, { kind: 'hello' }>;
}

function pick(actors: ActorView[], id: string): ActorView {
  const a = actors.find((x) => x.id === id);
  if (!a) throw new Error(`no actor ${id} among ${actors.map((x) => x.id).join(', ')}`);
  return a;
}

describe('attachViewer', () => {
  it('serves from rt.start() on 127.0.0.1 and stops serving on rt.stop()', async () => {
    const rt = createRuntime();
    const viewer = attachViewer(rt, { port: 0 });
    expect(viewer.url).toBeUndefined();
    await rt.start();
    expect(viewer.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const url = viewer.url as string;
    const page = await fetch(url);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    // Everything the page needs comes from the viewer itself: no CDN.
    expect(html).not.toMatch(/https?:\/\//);
    expect(await (await fetch(`${url}viewer.js`)).text()).toContain('EventSource');
    await rt.stop();
    await expect(fetch(url)).rejects.toThrow();
  });

  it('shows every pattern actor with its diagram and highlights its current state', async () => {
    const rt = createRuntime({ inspect: () => {} });
    open.push(rt);
    const viewer = createViewer({ port: 0 });
    open.push(viewer);
    const url = await viewer.listen();
    const sms = rt.breaker('sms', { failureThreshold: 1, resetTimeoutMs: 60_000 });
    const q = rt.queue('sync', { handler: async () => {} });
    const saga = rt.saga('pay', { steps: [{ name: 'charge', run: async () => 1 }] });
    attachViewer(rt, viewer);
    await rt.start();
    await q.enqueue({ n: 1 });
    await q.drain();
    await saga.execute({}, { id: 's1' });
    await sms.call(async () => Promise.reject(new Error('down'))).catch(() => {});
    await until(async () => pick((await state(url)).actors, 'breaker.sms').states[0] === 'open', 2_000);
    // Diagrams are laid out asynchronously (elkjs), once per machine.
    await viewer.hub.diagramsReady();
    const s = await state(url);
    const ids = s.actors.map((a) => a.id);
    expect(ids).toEqual(expect.arrayContaining(['runtime', 'bus', 'breaker.sms', 'queue.sync', 'saga.pay.s1']));
    const breaker = pick(s.actors, 'breaker.sms');
    expect(breaker.events.map((e) => e.type)).toContain('call.failure');
    const svg = s.diagrams[breaker.diagram as string] as string;
    expect(svg).toContain('data-state="halfOpen"');
    const queue = pick(s.actors, 'queue.sync');
    expect(queue.states).toEqual(['running.working']);
    expect(queue.tasks?.counts).toEqual({ succeeded: 1 });
    expect(s.diagrams[queue.tasks?.diagram as string]).toContain('data-state="retrying"');
    expect(s.actors.filter((a) => a.parent === queue.key).map((a) => a.id)).toContain('worker-0');
    expect(pick(s.actors, 'saga.pay.s1')).toMatchObject({ status: 'done', states: ['completed'] });
  });

  it('streams the picture, then the changes, over server-sent events', async () => {
    const rt = createRuntime();
    open.push(rt);
    const viewer = createViewer({ port: 0 });
    open.push(viewer);
    const url = await viewer.listen();
    attachViewer(rt, viewer);
    await rt.start();
    const sms = rt.breaker('sms', { failureThreshold: 1 });
    const controller = new AbortController();
    const res = await fetch(`${url}events`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>)
      .pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>)
      .getReader();
    const messages: ViewerMessage[] = [];
    let buffer = '';
    const next = async (pred: (m: ViewerMessage) => boolean) => {
      for (;;) {
        const found = messages.find(pred);
        if (found) return found;
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += value;
        const chunks = buffer.split('\n\n');
        buffer = chunks.pop() ?? '';
        for (const c of chunks) if (c.startsWith('data: ')) messages.push(JSON.parse(c.slice(6)) as ViewerMessage);
      }
    };
    const hello = await next((m) => m.kind === 'hello');
    expect(hello.kind === 'hello' && hello.actors.some((a) => a.id === 'breaker.sms')).toBe(true);
    sms.isolate();
    const update = await next(
      (m) => m.kind === 'actor' && m.actor.id === 'breaker.sms' && m.actor.states[0] === 'isolated',
    );
    expect(update).toBeDefined();
    controller.abort();
  });

  it('marks the actors of a stopped runtime and keeps only the newest runtimes', async () => {
    const viewer = createViewer({ port: 0, runtimes: 2 });
    open.push(viewer);
    const url = await viewer.listen();
    for (let i = 0; i < 3; i++) {
      const rt = createRuntime();
      viewer.watch(rt, `rt${i}`);
      await rt.start();
      await rt.stop();
    }
    await until(async () => (await state(url)).actors.every((a) => a.status !== 'active'), 2_000);
    const s = await state(url);
    expect(s.runtimes.map((r) => r.label)).toEqual(['rt1', 'rt2']);
    expect(s.runtimes.every((r) => r.status === 'stopped')).toBe(true);
    expect(new Set(s.actors.map((a) => a.runtime))).toEqual(new Set(['rt1', 'rt2']));
  });

  it('shows two runtimes with the same name apart', async () => {
    const viewer = createViewer({ port: 0 });
    open.push(viewer);
    const url = await viewer.listen();
    const a = createRuntime();
    const b = createRuntime();
    open.push(a, b);
    viewer.watch(a, 'shop');
    viewer.watch(b, 'shop');
    const s = await state(url);
    expect(s.runtimes.map((r) => r.label)).toEqual(['shop', 'shop (2)']);
  });

  it('refuses a bad port with INVALID_OPTIONS', () => {
    expect(() => createViewer({ port: -1 })).toThrow(/viewer.port/);
  });

  it.each([[''], ['evil.example/x'], ['[::1]'], ['host name'], [42]])(
    'refuses the host %j with INVALID_OPTIONS naming viewer.host',
    (host) => {
      const error = captured(() => createViewer({ port: 0, host: host as string }));
      expect(error).toBeInstanceOf(KeelError);
      expect((error as KeelError).code).toBe('INVALID_OPTIONS');
      expect((error as KeelError).message).toContain("'viewer.host'");
    },
  );
});

function captured(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Sends one request to `address`:`port` with exactly this `Host` header; resolves with the status and body. */
function send(
  address: string,
  port: number,
  host: string,
  path = '/state',
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, method, headers: { host } }, (res) => {
      // The event stream never ends by itself: the status is all this needs.
      if (path === '/events') {
        res.destroy();
        return resolve({ status: res.statusCode ?? 0, body: '' });
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).end();
  });
}

/** A request over HTTP/1.0 without any `Host` header, which Node's server lets through. */
function sendWithoutHost(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, address, () => socket.write('GET /state HTTP/1.0\r\n\r\n'));
    let text = '';
    socket.on('data', (c) => (text += c));
    socket.on('end', () => resolve(text.split('\r\n')[0] as string));
    socket.on('error', reject);
  });
}

// This machine's own name, when it resolves to one of its addresses (it does on most hosts, not on every CI runner).
const machine = hostname().toLowerCase();
const machineAddress = await lookup(machine).then(
  (a) => a.address,
  () => undefined,
);

describe('the viewer answers only Host names it serves under (DNS rebinding)', () => {
  type Case = { bind: string; connect: string; good: string[]; bad: string[] };
  const P = 'PORT';
  const rebound = ['evil.example:PORT', '127.0.0.1.evil.example:PORT', 'localhost.evil.example:PORT', 'evil.example'];
  const cases: Case[] = [
    {
      bind: '127.0.0.1',
      connect: '127.0.0.1',
      good: ['127.0.0.1:PORT', 'localhost:PORT', 'LocalHost:PORT', '127.0.0.1', 'localhost:9000'],
      bad: [...rebound, '10.0.0.5:PORT', 'user@127.0.0.1:PORT', '127.0.0.1:PORT/x'],
    },
    {
      bind: 'localhost',
      connect: 'localhost',
      good: ['localhost:PORT', '127.0.0.1:PORT', '[::1]:PORT'],
      bad: [...rebound, '10.0.0.5:PORT'],
    },
    {
      bind: '::1',
      connect: '::1',
      good: ['[::1]:PORT', 'localhost:PORT', '[0:0:0:0:0:0:0:1]:PORT', '[::1]'],
      bad: [...rebound, '::1:PORT', '[fe80::1]:PORT'],
    },
    {
      bind: '0.0.0.0',
      connect: '127.0.0.1',
      good: ['127.0.0.1:PORT', 'localhost:PORT', '192.168.1.20:PORT', '0.0.0.0:PORT', '[::1]:PORT'],
      bad: [...rebound, `${machine}:PORT`, 'intranet:PORT'],
    },
    {
      bind: '::',
      connect: '::1',
      good: ['[::1]:PORT', 'localhost:PORT', '127.0.0.1:PORT', '[fe80::1]:PORT', '[::]:PORT'],
      bad: [...rebound, `${machine}:PORT`],
    },
  ];

  it.each(cases)('bound to $bind', async ({ bind, connect: address, good, bad }) => {
    const viewer = createViewer({ port: 0, host: bind });
    open.push(viewer);
    const port = Number(new URL(await viewer.listen()).port);
    const at = (h: string) => h.replace(P, String(port));
    for (const host of good) expect((await send(address, port, at(host))).status, at(host)).toBe(200);
    for (const host of bad) {
      const refused = await send(address, port, at(host));
      expect(refused.status, at(host)).toBe(403);
      expect(refused.body).toMatch(/^forbidden host: this viewer answers only to /);
    }
    expect(await sendWithoutHost(address, port)).toMatch(/^HTTP\/1\.1 403/);
  });

  it('refuses a rebound name on every path and method, the event stream included', async () => {
    const viewer = createViewer({ port: 0, host: 'localhost' });
    open.push(viewer);
    const url = new URL(await viewer.listen());
    const port = Number(url.port);
    const address = url.hostname.replace(/^\[(.*)\]$/, '$1');
    for (const path of ['/', '/viewer.js', '/viewer.css', '/state', '/events', '/nothing-here']) {
      expect((await send(address, port, `evil.example:${port}`, path)).status, path).toBe(403);
      expect((await send(address, port, `localhost:${port}`, path)).status, path).toBe(
        path === '/nothing-here' ? 404 : 200,
      );
    }
    expect((await send(address, port, `evil.example:${port}`, '/state', 'POST')).status).toBe(403);
    expect((await send(address, port, `localhost:${port}`, '/state', 'POST')).status).toBe(405);
  });

  it('bound to a non-loopback address or name, answers to that and nothing local', () => {
    const byAddress = hostGuard('192.168.1.20', '192.168.1.20');
    expect(byAddress.allows('192.168.1.20:4400')).toBe(true);
    for (const host of ['localhost:4400', '127.0.0.1:4400', '[::1]:4400', '192.168.1.21:4400', 'evil.example:4400']) {
      expect(byAddress.allows(host), host).toBe(false);
    }
    const byName = hostGuard('MyHost.lan', 'fe80::0:1');
    for (const host of ['myhost.lan:4400', 'MYHOST.LAN', '[fe80::1]:4400'])
      expect(byName.allows(host), host).toBe(true);
    for (const host of ['localhost:4400', 'myhost.lan.evil.example:4400', 'myhost:4400', undefined]) {
      expect(byName.allows(host), host).toBe(false);
    }
    expect(byName.accepted).toBe('myhost.lan, [fe80::1]');
  });

  it.skipIf(machineAddress === undefined)("bound to this machine's name, answers to that name", async () => {
    const viewer = createViewer({ port: 0, host: machine });
    open.push(viewer);
    const port = Number(new URL(await viewer.listen()).port);
    const address = machineAddress as string;
    expect((await send(address, port, `${machine}:${port}`)).status).toBe(200);
    expect((await send(address, port, `${machine.toUpperCase()}:${port}`)).status).toBe(200);
    expect((await send(address, port, `${address.includes(':') ? `[${address}]` : address}:${port}`)).status).toBe(200);
    expect((await send(address, port, `evil.example:${port}`)).status).toBe(403);
    expect((await send(address, port, `${machine}.evil.example:${port}`)).status).toBe(403);
  });
});
