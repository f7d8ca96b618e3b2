/**
 * Watching keel's machines live.
 *
 *   npx tsx examples/inspector.ts            keel's own viewer on http://127.0.0.1:4400/ (works offline)
 *   npx tsx examples/inspector.ts --stately  the Stately inspector, through a local WebSocket relay on :8080
 *   add --port <n> to use another port
 *
 * A small service runs until Ctrl-C: an SMS breaker whose provider fails now
 * and then, a queue delivering profile updates, and checkouts that sometimes
 * compensate. Every one of them is an actor in the runtime's system.
 */
import { pathToFileURL } from 'node:url';
import { createWebSocketInspector } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { createRuntime, NonRetryableError, type RuntimeOptions } from '../src/index.js';

/** How the runtime is watched: keel's viewer, or the Stately inspector. */
function watching(stately: boolean, port: number | undefined): { options: RuntimeOptions; close(): void; url: string } {
  if (!stately) {
    const at = port ?? 4400;
    // `viewer` serves the page from rt.start() to rt.stop().
    return { options: { viewer: { port: at } }, close: () => {}, url: `http://127.0.0.1:${at}/` };
  }
  const at = port ?? 8080;
  // The relay serves a page that embeds the inspector UI from stately.ai and forwards our events to it.
  const server = createInspectorServer({ port: at, autoOpen: false });
  const inspector = createWebSocketInspector({ url: `ws://localhost:${at}` });
  return {
    options: { inspect: inspector.inspect },
    close: () => {
      inspector.stop();
      server.stop();
    },
    url: `http://localhost:${at}/`,
  };
}

/** Runs the watched service until `signal` aborts. */
export async function main(options: { stately: boolean; port?: number }, signal: AbortSignal): Promise<void> {
  const { options: runtimeOptions, close, url } = watching(options.stately, options.port);
  const rt = createRuntime(runtimeOptions);
  const sms = rt.breaker('sms', { failureThreshold: 2, resetTimeoutMs: 1_500 });
  const sync = rt.queue('profile-sync', {
    concurrency: 2,
    retry: { initialDelayMs: 200, maxAttempts: 3 },
    handler: async (task) => {
      if (Math.random() < 0.3) throw new Error(`service B is busy (task ${task.id})`);
    },
  });
  const checkout = rt.saga('checkout', {
    steps: [
      { name: 'createOrder', run: async () => ({ orderId: `o-${Date.now()}` }), compensate: async () => {} },
      { name: 'deductInventory', run: async () => 'held', compensate: async () => {} },
      {
        name: 'processPayment',
        run: async (ctx) => {
          if ((ctx.input as { amount: number }).amount > 100) throw new NonRetryableError('card declined');
          return 'paid';
        },
      },
    ],
  });
  await rt.start();
  console.log(`watch the actors on ${url} (Ctrl-C to stop)`);
  let round = 0;
  try {
    while (!signal.aborted) {
      round++;
      // The provider is down every third round: the breaker opens, then recovers through halfOpen.
      const down = round % 3 === 0;
      await sms.call(async () => (down ? Promise.reject(new Error('provider down')) : 'sent')).catch(() => {});
      await sync.enqueue({ user: `u${round % 5}`, round });
      await checkout.execute({ amount: round % 4 === 0 ? 120 : 40 }).catch(() => {});
      await new Promise((r) => setTimeout(r, 700));
    }
  } finally {
    await rt.stop();
    close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  const port = process.argv.indexOf('--port');
  await main(
    { stately: process.argv.includes('--stately'), ...(port > 0 ? { port: Number(process.argv[port + 1]) } : {}) },
    stop.signal,
  );
}
