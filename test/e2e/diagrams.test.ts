import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { checkoutWithWebhookSteps, inProcess } from '../../src/cli/scenarios/checkout/saga.js';
import { createShop } from '../../src/cli/scenarios/checkout/services.js';
import { catalog } from '../../src/diagram/catalog.js';
import { createRuntime, type Runtime } from '../../src/index.js';
import { createViewer, type Viewer } from '../../src/viewer/attach.js';
import { artifacts, executablePath, launchChromium } from '../fixtures/chromium.js';
import { type DrawnDiagram, problems } from '../viewer/geometry.js';

let browser: Browser | undefined;
let rt: Runtime | undefined;
let viewer: Viewer | undefined;
afterAll(async () => {
  await browser?.close();
  await rt?.stop();
  await viewer?.close();
});

const ok = async () => 'ok';
const fail = async () => {
  throw new Error('declined');
};

/** A runtime with every built-in machine on the viewer: runtime, bus, breaker, queue (and its task lifecycle), schedule, two sagas. */
async function everyMachine(): Promise<string> {
  rt = createRuntime({ inspect: () => {} });
  viewer = createViewer({ port: 0 });
  const url = await viewer.listen();
  viewer.watch(rt, 'diagrams');
  const sms = rt.breaker('sms', { failureThreshold: 1, resetTimeoutMs: 60_000 });
  const q = rt.queue('sync', { handler: ok });
  rt.schedule('nightly', { cron: '0 3 * * *', queue: 'sync' });
  // The catalog's checkout (parallel reserve-and-authorise, a webhook wait that times out here), and a saga with
  // long step names, one undone also when it fails.
  const checkout = rt.saga('checkout', {
    steps: checkoutWithWebhookSteps(inProcess(createShop({ keyboard: 5 })), { paymentTimeoutMs: 30 }),
  });
  const fulfilment = rt.saga('fulfilment', {
    steps: [
      { name: 'reserveWarehouseSlot', run: ok, compensate: ok },
      { name: 'deductInventory', run: ok, compensate: ok },
      { name: 'authorizePaymentWithProvider', run: ok, compensate: ok },
      { name: 'notifyCustomerByEmailAndSms', run: fail },
    ],
  });
  await rt.start();
  await q.enqueue({ n: 1 });
  await q.drain();
  const c1 = await checkout.execute({ customer: 'ada', sku: 'keyboard', qty: 1, amount: 49 }, { id: 'c1' });
  expect(c1.status).toBe('compensated');
  await fulfilment.execute({}, { id: 'f1' });
  await sms.call(fail).catch(() => {});
  await viewer.hub.diagramsReady();
  return url;
}

/** Every diagram on the page as Chromium draws it: the boxes of states, titles and labels, and where each edge starts and ends. */
function readDiagrams(page: Page): Promise<DrawnDiagram[]> {
  return page.evaluate(() => {
    const rect = (el: Element | null) => {
      const r = (el as Element).getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    };
    return [...document.querySelectorAll('svg.machine')].map((svg, i) => {
      const card = svg.closest('article.actor')?.getAttribute('data-actor') ?? '?';
      const name = `${card} ${svg.getAttribute('data-machine')} #${i}`;
      const states = [...svg.querySelectorAll('g.state')];
      const containers = states.filter((g) => g.matches('.compound, .parallel'));
      const ids = states.map((g) => g.getAttribute('data-state') as string);
      return {
        name,
        leaves: states
          .filter((g) => !g.matches('.compound, .parallel'))
          .map((g) => ({
            id: g.getAttribute('data-state') as string,
            box: rect(g.querySelector('rect')),
            text: rect(g.querySelector('text')),
          })),
        containers: containers.map((g) => {
          const id = g.getAttribute('data-state') as string;
          return {
            id,
            box: rect(g.querySelector('rect')),
            title: rect(g.querySelector('text.title')),
            children: ids.filter((c) => c.startsWith(`${id}.`)),
          };
        }),
        edges: [...svg.querySelectorAll('g.edge')].map((g) => {
          const path = g.querySelector('path') as SVGPathElement;
          const ctm = path.getScreenCTM() as DOMMatrix;
          const at = (len: number) => {
            const p = path.getPointAtLength(len).matrixTransform(ctm);
            return { x: p.x, y: p.y };
          };
          return {
            from: g.getAttribute('data-from') as string,
            to: g.getAttribute('data-to') as string,
            label: rect(g.querySelector('text')),
            start: at(0),
            end: at(path.getTotalLength()),
          };
        }),
        notes: [...svg.querySelectorAll('.everywhere')].map((t) => rect(t)),
      };
    });
  });
}

describe('the viewer draws every built-in machine readably (headless Chromium)', () => {
  it.skipIf(!executablePath)(
    'no label overlaps a box or a label, no name is clipped, every edge joins its own boxes',
    async () => {
      const url = await everyMachine();
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(url);
      // Finished sagas are rows of the saga list: a click opens each one's card.
      for (const id of ['saga.checkout.c1', 'saga.fulfilment.f1']) {
        await page.locator('ol.finished li', { hasText: id }).click();
      }
      const wanted = ['breaker.sms', 'queue.sync', 'saga.checkout.c1', 'saga.fulfilment.f1', 'bus', 'runtime'];
      for (const id of wanted) {
        await page
          .locator(`article.actor[data-actor="${id}"] .diagram svg.machine`)
          .first()
          .waitFor({ timeout: 10_000 });
      }
      await page.locator('article.actor[data-actor="queue.sync"] .tasks svg.machine').waitFor({ timeout: 10_000 });
      const diagrams = await readDiagrams(page);
      // Every machine of the catalog is on the page (the checkout saga has the catalog's shape).
      const drawn = new Set(diagrams.map((d) => d.name.split(' ')[1]));
      for (const e of catalog) expect(drawn, e.name).toContain(e.machine.root.key);
      expect(diagrams.some((d) => d.leaves.some((l) => l.id === 'compensating.authorizePaymentWithProvider'))).toBe(
        true,
      );
      // The checkout card draws the parallel step as a container of its two branches, and the webhook wait.
      const card = diagrams.find((d) => d.name.startsWith('saga.checkout.c1 '));
      expect(card?.containers.map((c) => c.id)).toContain('running.reserveAndAuthorise');
      expect(card?.leaves.map((l) => l.id)).toContain('running.paymentConfirmed');
      for (const d of diagrams) {
        expect(d.leaves.length, d.name).toBeGreaterThan(0);
        expect(problems(d), d.name).toEqual([]);
      }
      // Nothing written in HTML is cut either: card titles and current states.
      const clipped = await page.evaluate(() =>
        [...document.querySelectorAll('article.actor h3 span, .diagram, ol.finished li span, table.runtimes td')]
          .filter((el) => el.scrollWidth > el.clientWidth + 1)
          .map((el) => `${el.closest('article')?.getAttribute('data-actor')} ${el.className}`),
      );
      expect(clipped).toEqual([]);
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: `${artifacts}diagrams-viewer.png`, fullPage: true });
      for (const id of wanted) {
        await page
          .locator(`article.actor[data-actor="${id}"]`)
          .screenshot({ path: `${artifacts}diagram-${id.replace(/\W+/g, '-')}.png` });
      }
    },
  );
});
