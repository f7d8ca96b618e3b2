import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
import { createViewer, type Viewer } from '../../src/viewer/attach.js';
import { artifacts, executablePath, launchChromium } from '../fixtures/chromium.js';
import { until } from '../fixtures/wait.js';

let browser: Browser | undefined;
const runtimes: Runtime[] = [];
let viewer: Viewer | undefined;
afterAll(async () => {
  await browser?.close();
  for (const rt of runtimes) await rt.stop();
  await viewer?.close();
});

/** The page's height stays under this, however many sagas ran. */
const MAX_HEIGHT = 3_000;

describe('the viewer does not pile up (headless Chromium)', () => {
  it.skipIf(!executablePath)(
    '200 sagas and three runtimes later: one panel per component, sagas in a capped list, a bounded page',
    async () => {
      // The hub keeps more finished sagas than the page lists, so the page's own cap is what is tested.
      viewer = createViewer({ port: 0, finished: 500 });
      const url = await viewer.listen();
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(url);
      // Three runtimes one after the other, like the rounds of `keel inspect`: each has a runtime, a bus, a breaker.
      let last = '';
      for (let round = 1; round <= 3; round++) {
        const rt = createRuntime({ inspect: () => {} });
        runtimes.push(rt);
        viewer.watch(rt, `round ${round}`);
        rt.breaker('sms');
        const pay = rt.saga('pay', {
          steps: [
            { name: 'reserve', run: async () => 1, compensate: async () => {} },
            {
              name: 'charge',
              run: async (ctx) => {
                if ((ctx.input as { n: number }).n % 5 === 0) throw new Error('declined');
                return 2;
              },
            },
          ],
        });
        await rt.start();
        const n = round === 3 ? 200 : 10;
        for (let i = 1; i <= n; i += 20) {
          await Promise.all(
            Array.from({ length: Math.min(20, n - i + 1) }, (_, j) =>
              pay.execute({ n: i + j }, { id: `r${round}-${i + j}` }),
            ),
          );
        }
        last = `saga.pay.r${round}-${n}`;
        if (round < 3) await rt.stop();
      }
      await until(
        async () => (await page.evaluate(() => document.body.textContent ?? '')).includes(last),
        10_000,
        'the newest saga on the page',
      );
      await page.waitForTimeout(200);
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      expect(height).toBeLessThan(MAX_HEIGHT);
      // One panel per kind of component, each once.
      const panels = await page.locator('section.panel').evaluateAll((s) => s.map((x) => x.getAttribute('data-panel')));
      expect(panels).toEqual(['runtime', 'breaker', 'saga']);
      // The runtime and bus are drawn once (for the running runtime); the others are rows of the table.
      expect(await page.locator('article.actor[data-actor="runtime"]').count()).toBe(1);
      expect(await page.locator('article.actor[data-actor="bus"]').count()).toBe(1);
      expect(await page.locator('table.runtimes tr[data-runtime]').count()).toBe(3);
      // The breaker of the stopped rounds gives way to the running one's.
      expect(await page.locator('article.actor[data-actor="breaker.sms"]').count()).toBe(1);
      // Finished sagas are rows, newest first, capped, with a count of the rest; none has a card of its own.
      const rows = await page.locator('ol.finished li[data-key] .name').allTextContents();
      expect(rows.length).toBe(25);
      expect(rows[0]).toBe(last);
      expect(rows[1]).toBe('saga.pay.r3-199');
      await expect(page.locator('ol.finished li.more').textContent()).resolves.toMatch(/^and \d+ older$/);
      expect(await page.locator('section[data-panel="saga"] article.actor').count()).toBe(0);
      // A click on a row opens that saga's card, with its final state highlighted.
      await page.locator('ol.finished li', { hasText: 'saga.pay.r3-195' }).click();
      const opened = page.locator('article.actor[data-actor="saga.pay.r3-195"]');
      await opened.locator('g.state.active[data-state="compensated"]').waitFor({ timeout: 5_000 });
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: `${artifacts}console-200-sagas.png`, fullPage: true });
    },
  );
});
