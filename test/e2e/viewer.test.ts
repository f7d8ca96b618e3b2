import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { artifacts, executablePath, launchChromium } from '../fixtures/chromium.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
if (!executablePath) {
  console.warn(
    'test/e2e/viewer.test.ts: skipped, no chromium on this machine (apt-get install chromium, or set KEEL_CHROMIUM)',
  );
}

let child: ChildProcess | undefined;
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child?.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
});

/** Starts `keel inspect` through the package's bin and resolves with the viewer's address. */
function startInspect(): Promise<string> {
  const proc = spawn(process.execPath, ['bin/keel.js', 'inspect', '--port', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const url = /keel live viewer: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
      if (url) resolve(url);
    });
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    proc.once('exit', (code) => reject(new Error(`keel inspect exited with ${code}:\n${out}`)));
  });
}

describe('keel inspect in headless Chromium', () => {
  it.skipIf(!executablePath)('shows the SMS breaker of the demo going from closed to open', async () => {
    const url = await startInspect();
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // Records every state the sms breaker's diagram highlights, from the first paint on.
    await page.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      new MutationObserver(() => {
        const active = document.querySelector('article.actor[data-actor="breaker.sms"] g.state.active');
        const state = active?.getAttribute('data-state');
        if (state && seen.at(-1) !== state) seen.push(state);
      }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
    });
    // The demo starts when this page connects, so the breaker is seen from its first state.
    await page.goto(url);
    const open = page.locator('article.actor[data-actor="breaker.sms"] g.state.active[data-state="open"]');
    await open.waitFor({ state: 'attached', timeout: 20_000 });
    // Freeze the page on this moment (the demo goes on and the breaker recovers) for the checks and screenshots.
    await page.evaluate('stream.close()');
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    expect(seen.slice(0, 2)).toEqual(['closed', 'open']);
    // The current state is also written in the card's title.
    await expect(page.locator('article.actor[data-actor="breaker.sms"] .current').textContent()).resolves.toBe('open');
    mkdirSync(artifacts, { recursive: true });
    await page
      .locator('article.actor[data-actor="breaker.sms"]')
      .screenshot({ path: `${artifacts}viewer-breaker-card.png` });
    await page.screenshot({ path: `${artifacts}viewer-breaker-open.png`, fullPage: true });
  });
});
