import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, NonRetryableError, type Runtime } from '../../src/index.js';
import { until } from '../fixtures/wait.js';
import { rawRequest } from './http.js';

const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop();
});

/** A read-only viewer (no admin token) over a queue of ten tasks, every third one dead, and a saga run three ways. */
async function shop() {
  const rt = createRuntime({ viewer: { port: 0 } });
  runtimes.push(rt);
  const mail = rt.queue('mail', {
    paused: true,
    handler: async (task) => {
      const { n } = task.payload as { n: number };
      if (n % 3 === 0) throw new NonRetryableError(`bounced ${n}`);
      return { sent: n };
    },
  });
  const order = rt.saga('order', {
    steps: [
      { name: 'reserve', run: async () => 'r', compensate: async () => {} },
      {
        name: 'charge',
        run: async (ctx) => {
          if ((ctx.input as { ok: boolean }).ok) return 'c';
          throw new Error('declined');
        },
      },
      { name: 'confirm', waitFor: 'payment.confirmed' },
    ],
  });
  await rt.start();
  const ids: string[] = [];
  for (let n = 1; n <= 10; n++) {
    const [r] = await Promise.all([mail.enqueue({ n }, { key: `k${n}`, group: n % 2 ? 'odd' : 'even' })]);
    ids.push(r.id);
  }
  mail.resume();
  await mail.drain();
  await order.execute({ ok: false }, { id: 'o-failed' });
  void order.execute({ ok: true }, { id: 'o-waiting' });
  await until(async () => (await order.get('o-waiting'))?.state === 'running.confirm', 10_000, 'o-waiting waits');
  await order.execute({ ok: false }, { id: 'o-failed-2' });
  const url = rt.viewer?.url as string;
  const get = async (path: string) => {
    const a = await rawRequest(new URL(path, url).href, { headers: { host: new URL(url).host } });
    return { status: a.status, body: JSON.parse(a.body) };
  };
  return { rt, mail, order, url, ids, get };
}

describe('console lists and details over HTTP (read-only, no token)', () => {
  it('lists a queue newest first, oldest first, paged, filtered by state, key and group', async () => {
    const { ids, get } = await shop();
    const newest = await get('/ops/tasks?queue=mail&order=newest&limit=4');
    expect(newest.status).toBe(200);
    expect(newest.body.items.map((t: { id: string }) => t.id)).toEqual(ids.slice(6).reverse());
    const second = await get(`/ops/tasks?queue=mail&order=newest&limit=4&after=${newest.body.next}`);
    expect(second.body.items.map((t: { id: string }) => t.id)).toEqual(ids.slice(2, 6).reverse());
    const last = await get(`/ops/tasks?queue=mail&order=newest&limit=4&after=${second.body.next}`);
    expect(last.body.items.map((t: { id: string }) => t.id)).toEqual(ids.slice(0, 2).reverse());
    expect(last.body.next).toBeUndefined();
    const oldest = await get('/ops/tasks?queue=mail&limit=2');
    expect(oldest.body.items.map((t: { id: string }) => t.id)).toEqual(ids.slice(0, 2));
    const dead = await get('/ops/tasks?queue=mail&state=dead&order=newest');
    expect(dead.body.items.map((t: { id: string; state: string; error: string }) => [t.id, t.state, t.error])).toEqual([
      [ids[8], 'dead', 'NonRetryableError: bounced 9'],
      [ids[5], 'dead', 'NonRetryableError: bounced 6'],
      [ids[2], 'dead', 'NonRetryableError: bounced 3'],
    ]);
    const byKey = await get('/ops/tasks?queue=mail&key=k4');
    expect(byKey.body.items).toEqual([expect.objectContaining({ id: ids[3], key: 'k4', state: 'succeeded' })]);
    expect(byKey.body.items[0].payload).toBe('{"n":4}');
    const even = await get('/ops/tasks?queue=mail&group=even&state=dead');
    expect(even.body.items.map((t: { id: string }) => t.id)).toEqual([ids[5]]);
  });

  it('shows one task in full with the task machine and its state to highlight', async () => {
    const { ids, get } = await shop();
    const dead = await get(`/ops/task?queue=mail&id=${ids[2]}`);
    expect(dead.status).toBe(200);
    expect(dead.body).toMatchObject({
      kind: 'task',
      queue: 'mail',
      states: ['dead'],
      item: {
        id: ids[2],
        state: 'dead',
        payload: { n: 3 },
        error: 'NonRetryableError: bounced 3',
        attempt: 1,
        key: 'k3',
        group: 'odd',
      },
    });
    expect(dead.body.item.finishedAt).toBeGreaterThanOrEqual(dead.body.item.createdAt);
    expect(dead.body.diagram).toContain('data-state="dead"');
    const done = await get(`/ops/task?queue=mail&id=${ids[3]}`);
    expect(done.body.item).toMatchObject({ state: 'succeeded', result: { sent: 4 } });
  });

  it('lists saga runs newest first, by status, paged, and shows one with its history and machine', async () => {
    const { get } = await shop();
    const all = await get('/ops/sagas?saga=order&limit=2');
    expect(all.status).toBe(200);
    expect(all.body.items.map((s: { id: string }) => s.id)).toEqual(['o-failed-2', 'o-waiting']);
    const rest = await get(`/ops/sagas?saga=order&limit=2&after=${encodeURIComponent(all.body.next)}`);
    expect(rest.body.items.map((s: { id: string }) => s.id)).toEqual(['o-failed']);
    expect(rest.body.next).toBeUndefined();
    const oldest = await get('/ops/sagas?saga=order&order=oldest&limit=2');
    expect(oldest.body.items.map((s: { id: string }) => s.id)).toEqual(['o-failed', 'o-waiting']);
    const newer = await get(`/ops/sagas?saga=order&order=oldest&limit=2&after=${encodeURIComponent(oldest.body.next)}`);
    expect(newer.body.items.map((s: { id: string }) => s.id)).toEqual(['o-failed-2']);
    const running = await get('/ops/sagas?saga=order&status=running');
    expect(running.body.items).toEqual([
      expect.objectContaining({ id: 'o-waiting', status: 'running', state: 'running.confirm' }),
    ]);
    const failed = await get('/ops/saga?saga=order&id=o-failed');
    expect(failed.status).toBe(200);
    expect(failed.body.item).toMatchObject({ id: 'o-failed', status: 'compensated', failedStep: 'charge' });
    expect(failed.body.item.history.map((h: { state: string }) => h.state)).toContain('running.charge');
    expect(failed.body.states).toEqual(['compensated']);
    const waiting = await get('/ops/saga?saga=order&id=o-waiting');
    expect(waiting.body.states).toEqual(['running.confirm']);
    expect(waiting.body.diagram).toContain('data-state="running.confirm"');
  });

  it('answers 404 for an unknown queue, saga, task or run, and 400 naming a bad or unknown parameter', async () => {
    const { get } = await shop();
    expect((await get('/ops/tasks?queue=nope')).status).toBe(404);
    expect((await get('/ops/task?queue=mail&id=999999')).status).toBe(404);
    expect((await get('/ops/sagas?saga=nope')).status).toBe(404);
    expect((await get('/ops/saga?saga=order&id=nope')).status).toBe(404);
    expect((await get('/ops/tasks?queue=mail&runtime=nope')).status).toBe(404);
    for (const [path, named] of [
      ['/ops/tasks?queue=mail&order=up', 'order'],
      ['/ops/tasks?queue=mail&state=done', 'state'],
      ['/ops/tasks?queue=mail&limit=0', 'limit'],
      ['/ops/tasks?queue=mail&limit=ten', 'limit'],
      ['/ops/tasks?queue=mail&after=x', 'after'],
      ['/ops/tasks?queue=mail&sort=id', 'sort'],
      ['/ops/tasks?queue=mail&key=a&key=b', 'key'],
      ['/ops/tasks?state=dead', 'queue'],
      ['/ops/sagas?saga=order&status=gone', 'status'],
      ['/ops/sagas?saga=order&order=up', 'order'],
      ['/ops/sagas?saga=order&after=%%', 'after'],
      ['/ops/saga?saga=order', 'id'],
    ] as const) {
      const answer = await get(path);
      expect(answer.status, path).toBe(400);
      expect(answer.body.error.message, path).toContain(`'${named}'`);
    }
  });

  it('answers only to its own Host and only to GET', async () => {
    const { url } = await shop();
    const rebound = await rawRequest(`${url}ops/tasks?queue=mail`, { headers: { host: 'evil.example' } });
    expect(rebound.status).toBe(403);
    const posted = await rawRequest(`${url}ops/tasks?queue=mail`, {
      method: 'POST',
      headers: { host: new URL(url).host },
    });
    expect(posted.status).toBe(405);
  });
});
