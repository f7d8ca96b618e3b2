import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { artifacts, executablePath, launchChromium } from '../fixtures/chromium.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { eachLine, until } from '../fixtures/wait.js';
import { postAction, rawRequest } from '../viewer/http.js';
import { cli } from './run.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const docs = fileURLToPath(new URL('../../docs/', import.meta.url));
const fresh = freshSchemas('console');
const TOKEN = 'fleet-console-admin-token-42';

const children: ChildProcess[] = [];
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
});

/** Spawns a process and collects its stdout lines; `saw(re)` waits for a line matching `re`. */
function start(args: string[]) {
  const proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  const lines: string[] = [];
  eachLine(proc.stdout!, (l) => lines.push(l));
  return {
    proc,
    lines,
    saw: async (re: RegExp, ms = 15_000) => {
      await until(() => lines.some((l) => re.test(l)), ms, `a line matching ${re}`);
      return lines.find((l) => re.test(l)) as string;
    },
  };
}

type Ops = {
  actions: boolean;
  title: string;
  can: string[];
  queues: { name: string; paused: boolean; stats: Record<string, number>; dead: { id: string; error?: string }[] }[];
  sagas: { saga: string; id: string; status: string; state: string }[];
  breakers: { name: string; state: string; scope: string }[];
};

describe('keel console --postgres (help and usage)', () => {
  it('prints its help and refuses a missing --postgres or a short token (exit 2)', async () => {
    const help = await cli('console', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/usage: keel console --postgres <url>/);
    const missing = await cli('console');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--postgres <url> is required/);
    const short = await cli('console', '--postgres', PG_URL, '--admin-token', 'abc');
    expect(short.code).toBe(2);
    expect(short.err).toMatch(/--admin-token.*at least 16 characters/);
    expect(short.err).not.toMatch(/abc/);
  });
});

describe.skipIf(!pgAvailable)('keel console --postgres on a fleet of two processes', () => {
  it('lists both processes’ queues, sagas and fleet breakers live, and acts on them without their code', async () => {
    const schema = fresh();
    const workers = ['w1', 'w2'].map((label) =>
      start(['--import', 'tsx', 'test/cli/fleetWorker.ts', PG_URL, schema, label]),
    );
    for (const w of workers) await w.saw(/^READY$/, 30_000);
    const console = start([
      'bin/keel.js',
      'console',
      '--postgres',
      PG_URL,
      '--schema',
      schema,
      '--port',
      '0',
      '--admin-token',
      TOKEN,
    ]);
    const url = /keel console: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(await console.saw(/^keel console: http/))![1]!;
    const ops = async (): Promise<Ops> => JSON.parse((await rawRequest(new URL('ops', url).href)).body);
    const act = async (action: Record<string, unknown>) => {
      const r = await postAction(url, action, { token: TOKEN });
      expect(r.status, r.body).toBe(200);
      return JSON.parse(r.body).result;
    };

    // Both processes' sagas, waiting for their signal; the breaker they opened together.
    await until(
      async () => (await ops()).sagas.filter((s) => s.state.includes('approve')).length === 2,
      15_000,
      'two sagas waiting',
    );
    let o = await ops();
    expect(o).toMatchObject({ actions: true, title: expect.stringContaining(`schema ${schema}`) });
    expect(o.can).not.toContain('breaker.isolate');
    expect(o.sagas.map((s) => s.id).sort()).toEqual(['w1-1', 'w2-1']);
    expect(o.breakers).toEqual([{ name: 'payments', state: 'open', scope: 'fleet' }]);

    // Work from outside: the counts the console shows follow what the processes do.
    const producer = postgresStore({ connectionString: PG_URL, schema });
    await producer.open();
    try {
      const payload = (x: unknown) => ({ payload: JSON.stringify(x), runAt: Date.now() });
      await producer.enqueue(
        'emails',
        [
          payload({ ok: 1 }),
          payload({ ok: 2 }),
          payload({ fail: true }),
          payload({ fail: true }),
          payload({ fail: true }),
        ],
        Date.now(),
      );
      await until(
        async () => {
          const q = (await ops()).queues.find((x) => x.name === 'emails');
          return q?.stats.succeeded === 2 && q.stats.dead === 3;
        },
        15_000,
        'emails: 2 succeeded, 3 dead',
      );
      o = await ops();
      const emails = o.queues.find((q) => q.name === 'emails')!;
      expect(emails.dead.every((d) => /mailbox full/.test(d.error ?? ''))).toBe(true);
      const [d1, d2, d3] = emails.dead.map((d) => d.id);

      // Pause fleet-wide: neither process claims; resume: they do.
      expect(await act({ action: 'queue.pause', queue: 'emails' })).toEqual({ scope: 'store' });
      // Both processes hear of it (NOTIFY, else their next poll) before the tasks arrive.
      await new Promise((r) => setTimeout(r, 1500));
      await producer.enqueue('emails', [payload({ ok: 3 }), payload({ ok: 4 })], Date.now());
      await new Promise((r) => setTimeout(r, 1000));
      o = await ops();
      expect(o.queues.find((q) => q.name === 'emails')).toMatchObject({
        paused: true,
        stats: { pending: 2, succeeded: 2 },
      });
      await act({ action: 'queue.resume', queue: 'emails' });
      await until(
        async () => (await ops()).queues.find((q) => q.name === 'emails')?.stats.succeeded === 4,
        15_000,
        '4 succeeded after the resume',
      );

      // Delete one dead task, redrive another: a process runs it again (and it dies again).
      expect(await act({ action: 'queue.deleteDead', queue: 'emails', ids: [d1] })).toEqual({ deleted: [d1] });
      const ranBefore = workers.flatMap((w) => w.lines).filter((l) => l === `RAN ${d2}`).length;
      expect(await act({ action: 'queue.redrive', queue: 'emails', ids: [d2] })).toEqual({ [d2!]: 'redriven' });
      await until(
        () => workers.flatMap((w) => w.lines).filter((l) => l === `RAN ${d2}`).length === ranBefore + 1,
        15_000,
        'the redriven task run again',
      );
      await until(
        async () => {
          const q = (await ops()).queues.find((x) => x.name === 'emails');
          return (
            q?.stats.dead === 2 &&
            q.dead.map((d) => d.id).join() === [d2, d3].sort((a, b) => Number(a) - Number(b)).join()
          );
        },
        15_000,
        'dead: the redriven one back, the deleted one gone',
      );

      if (executablePath) {
        browser = await launchChromium();
        const page = await browser.newPage({ viewport: { width: 1300, height: 800 } });
        page.setDefaultTimeout(45_000);
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`${url}#token=${TOKEN}`);
        await page
          .locator('#ops tr[data-breaker="payments"][data-state="open"]')
          .waitFor({ timeout: 45_000 })
          .catch(async (e: unknown) => {
            throw new Error(
              `${String(e)}\npage errors: ${errors.join('; ')}\n${(await page.locator('#ops').innerHTML()).slice(-3000)}`,
            );
          });
        expect(errors).toEqual([]);
        await page.locator('#ops tr[data-saga="order"][data-id="w1-1"]').waitFor();
        // The token was taken from the address and removed from it.
        expect(page.url()).toBe(url);
        mkdirSync(artifacts, { recursive: true });
        // The README's picture is refreshed only when asked (KEEL_UPDATE_DOCS=1), so a test run leaves the tree clean.
        if (process.env.KEEL_UPDATE_DOCS === '1') mkdirSync(docs, { recursive: true });
        await page.screenshot({ path: `${artifacts}fleet-console.png`, fullPage: true });
        if (process.env.KEEL_UPDATE_DOCS === '1') await page.screenshot({ path: `${docs}console.png`, fullPage: true });
        // A signal from the page's own form, as an operator sends it.
        await page.locator('#ops tr[data-id="w1-1"] button.pick-saga').click();
        await page.locator('#ops form.signal input[name="signal"]').fill('approved');
        await page.locator('#ops form.signal input[name="payload"]').fill('{"by":"ops"}');
        await page.locator('#ops form.signal button[type="submit"]').click();
        await page.locator('#ops .ops-result[data-ok="true"]').waitFor();
      } else {
        await act({ action: 'saga.signal', saga: 'order', id: 'w1-1', signal: 'approved', payload: { by: 'ops' } });
      }
      // The process running it (either one: the sagas are shared) completes it; the other is cancelled.
      await until(() => workers.some((w) => w.lines.includes('SAGA w1-1 completed')), 15_000, 'w1-1 completed');
      expect(await act({ action: 'saga.cancel', saga: 'order', id: 'w2-1', reason: 'ops' })).toEqual({
        requested: true,
      });
      await until(() => workers.some((w) => w.lines.includes('SAGA w2-1 cancelled')), 15_000, 'w2-1 cancelled');
      await until(async () => (await ops()).sagas.length === 0, 10_000, 'no saga left running');
      // A task running in one of the processes, cancelled from the console: its signal aborts there (NOTIFY).
      const [held] = await producer.enqueue('emails', [payload({ hold: true })], Date.now());
      await until(() => workers.some((w) => w.lines.includes(`RAN ${held!.id}`)), 15_000, 'the held task running');
      expect(await act({ action: 'queue.cancel', queue: 'emails', id: held!.id })).toEqual({ result: 'cancelled' });
      await until(
        () => workers.some((w) => w.lines.includes(`ABORTED ${held!.id} CANCELLED`)),
        15_000,
        'the held task aborted with CANCELLED',
      );
      await until(
        async () => (await ops()).queues.find((q) => q.name === 'emails')?.stats.cancelled === 1,
        10_000,
        'one cancelled',
      );
      expect(await act({ action: 'queue.cancel', queue: 'emails', id: held!.id })).toEqual({ result: 'finished' });
      // What needs the running process is refused here.
      const iso = await postAction(url, { action: 'breaker.isolate', breaker: 'payments' }, { token: TOKEN });
      expect(iso.status).toBe(501);
    } finally {
      await producer.close();
    }
    console.proc.kill('SIGTERM');
    await console.saw(/keel console: stopped/);
  }, 240_000);
});
