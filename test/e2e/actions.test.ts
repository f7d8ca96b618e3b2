import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, NonRetryableError, type Runtime } from '../../src/index.js';
import { artifacts, executablePath, launchChromium } from '../fixtures/chromium.js';
import { until } from '../fixtures/wait.js';

const TOKEN = 'e2e-admin-token-0123456789abcdef';

let browser: Browser | undefined;
const runtimes: Runtime[] = [];
beforeAll(async () => {
  if (executablePath) browser = await launchChromium();
  mkdirSync(artifacts, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  for (const rt of runtimes) await rt.stop();
});

/** A runtime with its viewer: a queue whose tasks die until `heal()`, a breaker, a saga waiting for `approved`. */
async function shop(adminToken?: string) {
  let healed = false;
  const rt = createRuntime({ viewer: { port: 0, ...(adminToken !== undefined && { adminToken }) } });
  runtimes.push(rt);
  const mail = rt.queue('mail', {
    handler: async () => {
      if (!healed) throw new NonRetryableError('mailbox full');
    },
  });
  const sms = rt.breaker('sms');
  const order = rt.saga('order', {
    steps: [
      { name: 'reserve', run: async () => 'r', compensate: async () => {} },
      { name: 'approve', waitFor: 'approved' },
    ],
  });
  await rt.start();
  return { rt, mail, sms, order, url: rt.viewer?.url as string, heal: () => void (healed = true) };
}

async function open(url: string): Promise<Page> {
  const page = await (browser as Browser).newPage({ viewport: { width: 1300, height: 900 } });
  // A loaded machine (the full suite runs many browsers at once) can take long for a first paint.
  page.setDefaultTimeout(45_000);
  page.on('dialog', (d) => void d.accept());
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  return page;
}

const deadRows = (page: Page) => page.locator('#ops tr.dead[data-queue="mail"]');

describe('console actions in headless Chromium', () => {
  it.skipIf(!executablePath)(
    'dead tasks: delete one, redrive many, delete many, from the page',
    async () => {
      const { mail, url, heal } = await shop(TOKEN);
      for (let i = 0; i < 6; i++) await mail.enqueue({ i });
      await mail.drain();
      const page = await open(url);
      await until(async () => (await deadRows(page).count()) === 6, 45_000, 'six dead rows').catch(async (e) => {
        throw new Error(`${e}\n${(await page.locator('body').innerHTML()).slice(0, 3000)}`);
      });
      // Locked until the token is entered: the buttons are there, disabled.
      expect(await page.locator('#ops tr.dead button.act').first().isDisabled()).toBe(true);
      await page.locator('#ops form.token input[name="token"]').fill(TOKEN);
      await page.locator('#ops form.token button').click();
      const ids = (await mail.dead()).map((d) => d.id);

      await page.locator(`#ops tr.dead[data-dead="${ids[0]}"] button.act`, { hasText: 'delete' }).click();
      await until(async () => (await deadRows(page).count()) === 5, 20_000, 'one dead row gone');
      expect((await mail.dead()).map((d) => d.id)).toEqual(ids.slice(1));

      heal();
      for (const id of ids.slice(1, 4)) await page.locator(`#ops tr.dead[data-dead="${id}"] input.tick`).check();
      await page.screenshot({ path: `${artifacts}console-dead-selected.png`, fullPage: true });
      await page.locator('#ops button.bulk-redrive').click();
      await page.locator('#ops .ops-result[data-ok="true"]', { hasText: 'queue.redrive' }).waitFor();
      await mail.drain();
      await until(async () => (await deadRows(page).count()) === 2, 20_000, 'three redriven and run');
      expect((await mail.dead()).map((d) => d.id)).toEqual(ids.slice(4));
      expect((await mail.stats()).succeeded).toBe(3);

      for (const id of ids.slice(4)) await page.locator(`#ops tr.dead[data-dead="${id}"] input.tick`).check();
      await page.locator('#ops button.bulk-delete').click();
      await until(async () => (await deadRows(page).count()) === 0, 20_000, 'all dead rows gone');
      expect(await mail.dead()).toEqual([]);
      await page.close();
    },
    120_000,
  );

  it.skipIf(!executablePath)(
    'pause and resume a queue, isolate and reset a breaker',
    async () => {
      const { mail, sms, url } = await shop(TOKEN);
      const page = await open(`${url}#token=${TOKEN}`);
      const row = page.locator('#ops tr[data-queue="mail"]:not(.dead):not(.bulk)');
      await row.locator('button.act', { hasText: 'pause' }).click();
      await page.locator('#ops tr[data-queue="mail"][data-paused="true"]').waitFor();
      const { id } = await mail.enqueue({});
      await new Promise((r) => setTimeout(r, 100));
      expect((await mail.get(id))?.state).toBe('pending');
      await page.screenshot({ path: `${artifacts}console-queue-paused.png`, fullPage: true });
      await row.locator('button.act', { hasText: 'resume' }).click();
      await page.locator('#ops tr[data-queue="mail"][data-paused="false"]').waitFor();
      await until(async () => (await mail.get(id))?.state === 'dead', 20_000, 'the task ran');

      await page.locator('#ops tr[data-breaker="sms"] button.act', { hasText: 'isolate' }).click();
      await page.locator('#ops tr[data-breaker="sms"][data-state="isolated"]').waitFor();
      expect(sms.state).toBe('isolated');
      await page.screenshot({ path: `${artifacts}console-breaker-isolated.png`, fullPage: true });
      await page.locator('#ops tr[data-breaker="sms"] button.act', { hasText: 'reset' }).click();
      await page.locator('#ops tr[data-breaker="sms"][data-state="closed"]').waitFor();
      expect(sms.state).toBe('closed');
      await page.close();
    },
    60_000,
  );

  it.skipIf(!executablePath)(
    'send a saga a signal and cancel a saga, from the page',
    async () => {
      const { order, url } = await shop(TOKEN);
      const a = order.execute({}, { id: 'a' });
      const b = order.execute({}, { id: 'b' });
      const page = await open(`${url}#token=${TOKEN}`);
      await page.locator('#ops tr[data-saga="order"][data-id="b"]').waitFor();
      await page.locator('#ops tr[data-id="a"] button.pick-saga').click();
      expect(await page.locator('#ops form.signal input[name="sagaId"]').inputValue()).toBe('a');
      await page.locator('#ops form.signal input[name="signal"]').fill('approved');
      await page.locator('#ops form.signal input[name="payload"]').fill('{"by":"ops"}');
      await page.screenshot({ path: `${artifacts}console-saga-signal.png`, fullPage: true });
      await page.locator('#ops form.signal button[type="submit"]').click();
      await expect(a).resolves.toMatchObject({ status: 'completed', results: { approve: { by: 'ops' } } });
      await page.locator('#ops tr[data-id="b"] button.act', { hasText: 'cancel' }).click();
      await expect(b).resolves.toMatchObject({ status: 'cancelled' });
      await until(async () => (await page.locator('#ops tr[data-saga="order"]').count()) === 0, 20_000, 'no saga left');
      await page.close();
    },
    60_000,
  );

  it.skipIf(!executablePath)(
    'cancel a task from the page',
    async () => {
      const { mail, url } = await shop(TOKEN);
      mail.pause();
      const { id } = await mail.enqueue({});
      const page = await open(`${url}#token=${TOKEN}`);
      await page.locator('#ops tr[data-queue="mail"] button.pick-task').click();
      await page.locator('#ops form.cancel-task input[name="taskId"]').fill(id);
      await page.locator('#ops form.cancel-task button[type="submit"]').click();
      await page.locator('#ops .ops-result[data-ok="true"]', { hasText: 'cancelled' }).waitFor();
      expect((await mail.get(id))?.state).toBe('cancelled');
      await page.close();
    },
    60_000,
  );

  it.skipIf(!executablePath)(
    'without an admin token the page is read-only: no action control at all',
    async () => {
      const { mail, url } = await shop();
      await mail.enqueue({});
      await mail.drain();
      const page = await open(url);
      await deadRows(page).first().waitFor();
      expect(await page.locator('#ops button.act').count()).toBe(0);
      expect(await page.locator('#ops input.tick').count()).toBe(0);
      expect(await page.locator('#ops form.token').isVisible()).toBe(false);
      expect(await page.locator('#ops form.signal').isVisible()).toBe(false);
      expect(await page.locator('#ops .ops-note').textContent()).toMatch(/read-only/i);
      await page.screenshot({ path: `${artifacts}console-read-only.png`, fullPage: true });
      await page.close();
    },
    60_000,
  );
});
