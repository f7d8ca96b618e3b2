import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError, NonRetryableError, type Runtime } from '../../src/index.js';
import { until } from '../fixtures/wait.js';
import { postAction, rawRequest } from './http.js';

const TOKEN = 'a-test-admin-token-0123456789';
const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop();
});

/** A runtime with a viewer, a queue whose tasks die at once, a breaker and a saga waiting for a signal. */
async function shop(adminToken: string | null = TOKEN) {
  const rt = createRuntime({ viewer: { port: 0, ...(adminToken !== null && { adminToken }) } });
  runtimes.push(rt);
  const mail = rt.queue('mail', {
    handler: async (task) => {
      if ((task.payload as { ok?: boolean }).ok) return;
      throw new NonRetryableError('bounced');
    },
  });
  const sms = rt.breaker('sms');
  const order = rt.saga('order', {
    steps: [
      { name: 'reserve', run: async () => 'r', compensate: async () => {} },
      { name: 'confirm', waitFor: 'payment.confirmed' },
    ],
  });
  await rt.start();
  const url = rt.viewer?.url as string;
  return { rt, mail, sms, order, url };
}

async function deadIds(q: { dead(): Promise<{ id: string }[]> }) {
  return (await q.dead()).map((d) => d.id);
}

describe('console actions over HTTP: refusals', () => {
  it('refuses an action without the token, with a wrong token, from a foreign or missing Origin, to a wrong Host, by GET, as non-JSON', async () => {
    const { mail, url } = await shop();
    const pause = { action: 'queue.pause', queue: 'mail' };
    const noToken = await postAction(url, pause, { token: null });
    expect(noToken.status).toBe(401);
    expect(noToken.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await postAction(url, pause, { token: `${TOKEN}x` })).status).toBe(401);
    expect((await postAction(url, pause, { token: TOKEN.slice(0, -1) })).status).toBe(401);
    const foreign = await postAction(url, pause, { token: TOKEN, origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body).error.message).toMatch(/forbidden origin "http:\/\/evil\.example"/);
    // Same host name, other port: another origin (another local app) is refused too.
    const port = Number(new URL(url).port);
    expect((await postAction(url, pause, { token: TOKEN, origin: `http://127.0.0.1:${port + 1}` })).status).toBe(403);
    expect((await postAction(url, pause, { token: TOKEN, origin: null })).status).toBe(403);
    // DNS rebinding: the page's own origin, but a Host that is not this server's name.
    const rebound = await postAction(url, pause, {
      token: TOKEN,
      host: `evil.example:${port}`,
      origin: `http://evil.example:${port}`,
    });
    expect(rebound.status).toBe(403);
    expect(rebound.body).toMatch(/forbidden host/);
    const get = await postAction(url, pause, { token: TOKEN, method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect((await postAction(url, pause, { token: TOKEN, type: 'text/plain' })).status).toBe(415);
    // None of them did anything.
    expect(JSON.stringify(mail.actor.getSnapshot().value)).not.toMatch(/paused/);
    // And the same request, done right, does.
    const ok = await postAction(url, pause, { token: TOKEN });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ ok: true, result: { scope: 'runtime' } });
    expect(JSON.stringify(mail.actor.getSnapshot().value)).toMatch(/paused/);
  });

  it('is read-only without an admin token: every action is refused and /ops says actions are off', async () => {
    const { mail, url } = await shop(null);
    const r = await postAction(url, { action: 'queue.pause', queue: 'mail' }, { token: TOKEN });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.message).toMatch(/read-only/);
    expect(JSON.stringify(mail.actor.getSnapshot().value)).not.toMatch(/paused/);
    const ops = JSON.parse((await rawRequest(new URL('ops', url).href)).body);
    expect(ops).toMatchObject({ source: 'runtime', actions: false });
    expect(ops.queues.map((q: { name: string }) => q.name)).toEqual(['mail']);
  });

  it('refuses bad bodies naming what is wrong', async () => {
    const { url } = await shop();
    const bad = async (action: unknown) => {
      const r = await postAction(url, action, { token: TOKEN });
      return { status: r.status, message: JSON.parse(r.body).error.message as string };
    };
    expect(await bad({ action: 'queue.explode', queue: 'mail' })).toMatchObject({
      status: 400,
      message: /unknown action "queue.explode"/,
    });
    expect(await bad({ action: 'queue.redrive', queue: 'mail', ids: [] })).toMatchObject({
      status: 400,
      message: /'ids'/,
    });
    expect(await bad({ action: 'saga.signal', saga: 'order', id: 'x' })).toMatchObject({
      status: 400,
      message: /'signal'/,
    });
    expect(await bad({ action: 'queue.pause', queue: 'nope' })).toMatchObject({
      status: 404,
      message: /no queue 'nope'/,
    });
    expect(await bad({ action: 'saga.cancel', saga: 'order', id: 'nope' })).toMatchObject({ status: 404 });
  });

  it('refuses a short or non-string admin token at construction without echoing it', () => {
    const err = (() => {
      try {
        createRuntime({ viewer: { port: 0, adminToken: 'short-secret' } });
      } catch (e) {
        return e as KeelError;
      }
    })();
    expect(err).toBeInstanceOf(KeelError);
    expect(err?.code).toBe('INVALID_OPTIONS');
    expect(err?.message).toMatch(/viewer\.adminToken/);
    expect(err?.message).toMatch(/12 characters/);
    expect(err?.message).not.toMatch(/short-secret/);
    expect(() => createRuntime({ viewer: { port: 0, adminToken: 42 as never } })).toThrow(/viewer\.adminToken.*got 42/);
  });
});

describe('console actions over HTTP: what each does', () => {
  it('redrives and deletes dead tasks, one and many', async () => {
    const { mail, url } = await shop();
    for (let i = 0; i < 5; i++) await mail.enqueue({ n: i });
    await mail.drain();
    const ids = await deadIds(mail);
    expect(ids).toHaveLength(5);
    const ops = JSON.parse((await rawRequest(new URL('ops', url).href)).body);
    expect(ops.queues[0].dead.map((d: { id: string }) => d.id)).toEqual(ids);
    expect(ops.queues[0].dead[0]).toMatchObject({ attempt: 1, error: expect.stringMatching(/bounced/) });

    const one = await postAction(url, { action: 'queue.deleteDead', queue: 'mail', ids: [ids[0]] }, { token: TOKEN });
    expect(JSON.parse(one.body).result).toEqual({ deleted: [ids[0]] });
    const many = await postAction(
      url,
      { action: 'queue.deleteDead', queue: 'mail', ids: [ids[1], ids[2], 'nope'] },
      { token: TOKEN },
    );
    expect(JSON.parse(many.body).result).toEqual({ deleted: [ids[1], ids[2]] });
    expect(await deadIds(mail)).toEqual([ids[3], ids[4]]);

    const redrive = await postAction(
      url,
      { action: 'queue.redrive', queue: 'mail', ids: [ids[3], ids[4], ids[0]] },
      { token: TOKEN },
    );
    expect(JSON.parse(redrive.body).result).toEqual({
      [ids[3]!]: 'redriven',
      [ids[4]!]: 'redriven',
      [ids[0]!]: 'not-found',
    });
    await mail.drain();
    // Redriven, they ran again (and died again: the handler still bounces them).
    expect(await deadIds(mail)).toEqual([ids[3], ids[4]]);
    expect((await mail.get(ids[3]!))?.attempt).toBe(1);
  });

  it('pauses and resumes a queue, isolates and resets a breaker', async () => {
    const { mail, sms, url } = await shop();
    await postAction(url, { action: 'queue.pause', queue: 'mail' }, { token: TOKEN });
    const { id } = await mail.enqueue({ ok: true });
    await new Promise((r) => setTimeout(r, 50));
    expect((await mail.get(id))?.state).toBe('pending');
    await postAction(url, { action: 'queue.resume', queue: 'mail' }, { token: TOKEN });
    await mail.drain();
    expect((await mail.get(id))?.state).toBe('succeeded');

    const iso = await postAction(url, { action: 'breaker.isolate', breaker: 'sms' }, { token: TOKEN });
    expect(JSON.parse(iso.body).result).toEqual({ state: 'isolated' });
    expect(sms.state).toBe('isolated');
    await postAction(url, { action: 'breaker.reset', breaker: 'sms' }, { token: TOKEN });
    expect(sms.state).toBe('closed');
  });

  it('sends a saga a signal and cancels a saga', async () => {
    const { order, url } = await shop();
    const a = order.execute({ n: 1 }, { id: 'a' });
    const b = order.execute({ n: 2 }, { id: 'b' });
    await until(
      async () => {
        const ops = JSON.parse((await rawRequest(new URL('ops', url).href)).body);
        return ops.sagas.filter((s: { state: string }) => /confirm/.test(s.state)).length === 2;
      },
      5000,
      'both sagas waiting',
    );
    const sig = await postAction(
      url,
      { action: 'saga.signal', saga: 'order', id: 'a', signal: 'payment.confirmed', payload: { ok: 1 } },
      { token: TOKEN },
    );
    expect(sig.status).toBe(200);
    await expect(a).resolves.toMatchObject({ status: 'completed', results: { confirm: { ok: 1 } } });
    const cancel = await postAction(
      url,
      { action: 'saga.cancel', saga: 'order', id: 'b', reason: 'operator' },
      { token: TOKEN },
    );
    expect(JSON.parse(cancel.body)).toEqual({ ok: true, result: { requested: true } });
    await expect(b).resolves.toMatchObject({ status: 'cancelled' });
    const again = await postAction(url, { action: 'saga.cancel', saga: 'order', id: 'b' }, { token: TOKEN });
    expect(again.status).toBe(409);
  });

  it('cancels a task: a pending one never runs, a finished one answers finished', async () => {
    const { mail, url } = await shop();
    const ops = JSON.parse((await rawRequest(new URL('ops', url).href)).body);
    expect(ops.can).toContain('queue.cancel');
    mail.pause();
    const { id } = await mail.enqueue({ to: 'x' });
    const r = await postAction(url, { action: 'queue.cancel', queue: 'mail', id }, { token: TOKEN });
    expect(JSON.parse(r.body)).toEqual({ ok: true, result: { result: 'cancelled' } });
    expect((await mail.get(id))?.state).toBe('cancelled');
    const again = await postAction(url, { action: 'queue.cancel', queue: 'mail', id }, { token: TOKEN });
    expect(JSON.parse(again.body)).toEqual({ ok: true, result: { result: 'finished' } });
  });
});
