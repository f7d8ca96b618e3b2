import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/index.js';
import { attachViewer, createViewer, type Viewer } from '../../src/viewer/attach.js';
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

  it('answers only requests addressed to a local name (no DNS rebinding)', async () => {
    const viewer = createViewer({ port: 0 });
    open.push(viewer);
    const url = new URL(await viewer.listen());
    const get = (host: string) =>
      new Promise<number>((resolve, reject) => {
        request({ host: url.hostname, port: url.port, path: '/state', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    expect(await get(`127.0.0.1:${url.port}`)).toBe(200);
    expect(await get(`localhost:${url.port}`)).toBe(200);
    expect(await get(`evil.example:${url.port}`)).toBe(403);
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
});
