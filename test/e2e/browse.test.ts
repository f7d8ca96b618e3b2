import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, NonRetryableError, type Runtime } from '../../src/index.js';
import { artifacts, executablePath, launchChromium } from '../fixtures/chromium.js';
import { until } from '../fixtures/wait.js';

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

/** A read-only console: a queue where every fourth task dies, a saga that fails when told to and one that waits. */
async function shop() {
  const rt = createRuntime({ viewer: { port: 0 } });
  runtimes.push(rt);
  const mail = rt.queue('mail', {
    paused: true,
    handler: async (task) => {
      const { n } = task.payload as { n: number };
      if (n % 4 === 0) throw new NonRetryableError(`mailbox ${n} full`);
      return { sent: n };
    },
  });
  const order = rt.saga('order', {
    steps: [
      { name: 'reserve', run: async () => 'r', compensate: async () => {} },
      {
        name: 'charge',
        run: async (ctx) => {
          if ((ctx.input as { fail?: boolean }).fail) throw new Error('card declined');
          return 'c';
        },
      },
      { name: 'approve', waitFor: 'approved' },
    ],
  });
  await rt.start();
  return { rt, mail, order, url: rt.viewer?.url as string };
}

async function open(url: string): Promise<Page> {
  const page = await (browser as Browser).newPage({ viewport: { width: 1300, height: 900 } });
  // A loaded machine (the full suite runs many browsers at once) can take long for a first paint.
  page.setDefaultTimeout(45_000);
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  return page;
}

const panelOf = (page: Page, kind: 'queue' | 'saga', name: string) =>
  page.locator(`#browse section.browse-panel[data-kind="${kind}"][data-name="${name}"]`);
const rowIds = (page: Page, kind: 'queue' | 'saga', name: string) =>
  panelOf(page, kind, name)
    .locator('tr[data-id]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));

describe('console lists and detail view in headless Chromium', () => {
  it.skipIf(!executablePath)(
    'filters dead tasks, searches a key, pages, and opens a task and a saga run in detail',
    async () => {
      const { mail, order, url } = await shop();
      const ids: string[] = [];
      for (let n = 1; n <= 45; n++) ids.push((await mail.enqueue({ n }, { key: `user-${n}` })).id);
      mail.resume();
      await mail.drain();
      await order.execute({ fail: true }, { id: 'declined-1' });
      void order.execute({}, { id: 'waiting-1' });
      await until(async () => (await order.get('waiting-1'))?.state === 'running.approve', 10_000, 'waiting-1');
      const page = await open(url);
      const newest = [...ids].reverse();
      // Newest first, one page of 20.
      await until(
        async () => JSON.stringify(await rowIds(page, 'queue', 'mail')) === JSON.stringify(newest.slice(0, 20)),
        45_000,
        'the first page of mail, newest first',
      ).catch(async (e) => {
        throw new Error(`${e}\n${(await page.locator('#ops').innerHTML()).slice(0, 3000)}`);
      });
      const mailPanel = panelOf(page, 'queue', 'mail');
      // Next and previous pages.
      await mailPanel.locator('button.next').click();
      await until(
        async () => JSON.stringify(await rowIds(page, 'queue', 'mail')) === JSON.stringify(newest.slice(20, 40)),
        20_000,
        'the second page',
      );
      await mailPanel.locator('button.next').click();
      await until(
        async () => JSON.stringify(await rowIds(page, 'queue', 'mail')) === JSON.stringify(newest.slice(40)),
        20_000,
        'the last page',
      );
      expect(await mailPanel.locator('button.next').isDisabled()).toBe(true);
      await mailPanel.locator('button.prev').click();
      await until(
        async () => JSON.stringify(await rowIds(page, 'queue', 'mail')) === JSON.stringify(newest.slice(20, 40)),
        20_000,
        'back to the second page',
      );
      // Dead only: n = 4, 8, ..., 44.
      await mailPanel.locator('select[name="state"]').selectOption('dead');
      const deadIds = ids.filter((_, i) => (i + 1) % 4 === 0).reverse();
      await until(
        async () => JSON.stringify(await rowIds(page, 'queue', 'mail')) === JSON.stringify(deadIds),
        20_000,
        'the dead tasks',
      );
      // Search a key (among dead ones: user-8 is dead).
      await mailPanel.locator('select[name="field"]').selectOption('key');
      await mailPanel.locator('input[name="q"]').fill('user-8');
      await mailPanel.locator('button[type="submit"]').click();
      await until(
        async () => JSON.stringify(await rowIds(page, 'queue', 'mail')) === JSON.stringify([ids[7]]),
        20_000,
        'the task of key user-8',
      );
      // Its detail: payload, error, attempts, timeline, the task machine with `dead` highlighted.
      await mailPanel.locator(`tr[data-id="${ids[7]}"]`).click();
      const detail = page.locator('#detail');
      await detail.locator('pre.error').waitFor();
      expect(await detail.locator('h4').textContent()).toContain(`task #${ids[7]}`);
      expect(JSON.parse((await detail.locator('pre.payload').textContent()) ?? '')).toEqual({ n: 8 });
      expect(await detail.locator('pre.error').textContent()).toContain('mailbox 8 full');
      expect(await detail.locator('dd[data-field="attempts"]').textContent()).toBe('1');
      expect(await detail.locator('dd[data-field="key"]').textContent()).toBe('user-8');
      expect(await detail.locator('ol.timeline li').count()).toBe(3);
      expect(
        await detail.locator('svg g.state.active').evaluateAll((g) => g.map((x) => x.getAttribute('data-state'))),
      ).toEqual(['dead']);
      // Search by id opens nothing else and shows that one task.
      await mailPanel.locator('select[name="state"]').selectOption('');
      await mailPanel.locator('select[name="field"]').selectOption('id');
      await mailPanel.locator('input[name="q"]').fill(ids[0] as string);
      await mailPanel.locator('button[type="submit"]').click();
      await until(
        async () => JSON.stringify(await rowIds(page, 'queue', 'mail')) === JSON.stringify([ids[0]]),
        20_000,
        'the task searched by id',
      );

      // The saga: newest first, filter by status, a run in detail with its history and current state.
      const sagaPanel = panelOf(page, 'saga', 'order');
      await until(
        async () => JSON.stringify(await rowIds(page, 'saga', 'order')) === JSON.stringify(['waiting-1', 'declined-1']),
        20_000,
        'the runs of order, newest first',
      );
      await sagaPanel.locator('select[name="state"]').selectOption('compensated');
      await until(
        async () => JSON.stringify(await rowIds(page, 'saga', 'order')) === JSON.stringify(['declined-1']),
        20_000,
        'the compensated run',
      );
      await sagaPanel.locator('tr[data-id="declined-1"]').click();
      await until(async () => (await detail.getAttribute('data-id')) === 'declined-1', 20_000, 'its detail');
      expect(await detail.locator('pre.error').first().textContent()).toContain('card declined');
      expect(await detail.locator('dd[data-field="failed step"]').textContent()).toBe('charge');
      const timeline = await detail
        .locator('ol.timeline li')
        .evaluateAll((li) => li.map((x) => x.getAttribute('data-state')));
      expect(timeline).toContain('running.charge');
      expect(timeline.at(-1)).toBe('compensated');
      // The run still waiting: its current state is the one highlighted on the saga's machine.
      await sagaPanel.locator('select[name="state"]').selectOption('running');
      await until(
        async () => JSON.stringify(await rowIds(page, 'saga', 'order')) === JSON.stringify(['waiting-1']),
        20_000,
        'the running run',
      );
      await sagaPanel.locator('tr[data-id="waiting-1"]').click();
      await until(async () => (await detail.getAttribute('data-id')) === 'waiting-1', 20_000, 'its detail');
      expect(
        await detail.locator('svg g.state.active').evaluateAll((g) => g.map((x) => x.getAttribute('data-state'))),
      ).toEqual(['running.approve']);
      await page.screenshot({ path: `${artifacts}console-detail.png`, fullPage: true });
      await page.close();
    },
    180_000,
  );

  it.skipIf(!executablePath)(
    'the page does not grow with finished runs: lists stay one page however many sagas finish',
    async () => {
      const { order, url } = await shop();
      const page = await open(url);
      const run = async (from: number, count: number) => {
        for (let i = from; i < from + count; i += 20) {
          await Promise.all(
            Array.from({ length: 20 }, (_, j) => order.execute({ fail: true }, { id: `run-${i + j}` })),
          );
        }
      };
      const settle = async (newest: string) => {
        await until(async () => (await rowIds(page, 'saga', 'order'))[0] === newest, 45_000, `${newest} listed first`);
        return page.evaluate(() => ({
          nodes: document.getElementsByTagName('*').length,
          height: document.documentElement.scrollHeight,
        }));
      };
      // Runs of one batch may share a millisecond (then the greater id is listed first): a last run, alone, marks the end.
      await run(0, 40);
      await order.execute({ fail: true }, { id: 'zz-first-mark' });
      const before = await settle('zz-first-mark');
      await run(40, 200);
      await order.execute({ fail: true }, { id: 'zz-second-mark' });
      const after = await settle('zz-second-mark');
      expect(await rowIds(page, 'saga', 'order')).toHaveLength(20);
      // 200 more finished runs: the same page of rows, the same page height (the live cards are capped too).
      expect(after.nodes).toBeLessThanOrEqual(before.nodes + 50);
      expect(after.height).toBeLessThanOrEqual(before.height + 100);
      await page.close();
    },
    180_000,
  );
});
