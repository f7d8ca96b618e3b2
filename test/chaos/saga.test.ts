import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { checkoutSteps, checkoutWithWebhookSteps, PAYMENT_CONFIRMED } from '../../examples/checkout/saga.js';
import { createRuntime, type Runtime, sqliteStore } from '../../src/index.js';
import { INITIAL_STOCK, openShop, SKU } from '../fixtures/chaosShop.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { eachLine } from '../fixtures/wait.js';

const child = join(import.meta.dirname, '../fixtures/sagaCrashChild.ts');
const QTY = 3;
const ID = 'crash-1';
/** How the shop names a call: `<service> <idempotency key>`. */
const k = (service: string, step: string) => `${service} ${ID}:${step}`;

/** Starts the child and resolves once it printed `line` (it is then mid-call, sleeping), or rejects if it ended first. */
function runUntil(keelDb: string, shopDb: string, mode: 'ok' | 'decline' | 'webhook', line: string) {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, keelDb, shopDb, ID, mode, '250'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_c, signal) => resolve(signal)));
  const reached = new Promise<void>((resolve, reject) => {
    eachLine(proc.stdout!, (printed) => {
      if (printed === line) resolve();
    });
    exited.then(() => reject(new Error(`the child ended before printing '${line}'`)));
  });
  return { proc, reached, exited };
}

/** The saga's row in the keel file, read while no runtime has it open. */
function storedSaga(keelDb: string): { status: string; state: unknown } {
  const db = new Database(keelDb, { readonly: true });
  try {
    const row = db.prepare('SELECT status, state FROM keel_sagas WHERE saga = ? AND id = ?').get('checkout', ID) as {
      status: string;
      state: string;
    };
    return { status: row.status, state: JSON.parse(row.state) };
  } finally {
    db.close();
  }
}

describe('a checkout saga killed with SIGKILL resumes on the next start (SQLite)', () => {
  const files: string[] = [];
  let proc: ChildProcess | undefined;
  let rt: Runtime | undefined;
  let shop: ReturnType<typeof openShop> | undefined;
  afterEach(async () => {
    proc?.kill('SIGKILL');
    await rt?.stop();
    shop?.close();
    proc = rt = shop = undefined;
    for (const f of files.splice(0)) removeDb(f);
  });

  it.each([
    [
      'during a step, after its effect was applied',
      'ok',
      `applied ${k('inventory', 'deductInventory')}`,
      { running: 'deductInventory' },
    ],
    [
      'during a step, before its effect was applied',
      'ok',
      `call ${k('payments', 'processPayment')}`,
      { running: 'processPayment' },
    ],
    [
      'during a compensation, after its effect was applied',
      'decline',
      `applied ${k('inventory', 'deductInventory:compensate')}`,
      { compensating: 'deductInventory' },
    ],
    [
      'during a compensation, before its effect was applied',
      'decline',
      `call ${k('orders', 'createOrder:compensate')}`,
      { compensating: 'createOrder' },
    ],
  ] as const)('killed %s: it finishes, every effect applied once', async (_when, mode, killAt, inFlight) => {
    const base = tempPath('saga-chaos');
    const keelDb = `${base}.db`;
    const shopDb = `${base}.shop.db`;
    files.push(keelDb, shopDb);

    const run = runUntil(keelDb, shopDb, mode, killAt);
    proc = run.proc;
    await run.reached;
    run.proc.kill('SIGKILL');
    expect(await run.exited).toBe('SIGKILL');
    // The kill landed inside the call: the saga is stored as unfinished, at that step.
    expect(storedSaga(keelDb)).toEqual({ status: Object.keys(inFlight)[0], state: inFlight });

    shop = openShop(shopDb, { decline: mode === 'decline' });
    rt = createRuntime({ store: sqliteStore({ path: keelDb }) });
    const ended = new Promise<string>((resolve) => {
      rt!.bus.subscribe('saga.checkout.>', (_p, e) => {
        if (e.type.endsWith('.completed') || e.type.endsWith('.compensated') || e.type.endsWith('.failed')) {
          resolve(e.type.slice('saga.checkout.'.length));
        }
      });
    });
    const checkout = rt.saga('checkout', { steps: checkoutSteps(shop.api) });
    await rt.start();
    // start() alone resumes it; execute with the same id then returns how it ended.
    const status = await ended;
    const r = await checkout.execute({ customer: 'ada', sku: SKU, qty: QTY, amount: 90 }, { id: ID });
    expect(r.status).toBe(status);

    const s = shop.state();
    // The interrupted call was made again with the same key, and took effect once.
    const rerun = killAt.slice(killAt.indexOf(' ') + 1);
    expect(s.calls[rerun]).toBe(2);
    for (const [key, n] of Object.entries(s.applied)) expect(n, key).toBe(1);
    if (mode === 'ok') {
      expect(r.status).toBe('completed');
      expect(Object.keys(s.applied).sort()).toEqual([
        k('inventory', 'deductInventory'),
        k('orders', 'createOrder'),
        k('payments', 'processPayment'),
      ]);
      expect(s).toMatchObject({ stock: INITIAL_STOCK - QTY, held: QTY, payments: 1, orders: [{ status: 'open' }] });
    } else {
      expect(r).toMatchObject({
        status: 'compensated',
        failedStep: 'processPayment',
        compensated: ['deductInventory', 'createOrder'],
      });
      // Cancelling the order also voided its (declined) payment, at the payments service.
      expect(Object.keys(s.applied).sort()).toEqual([
        k('inventory', 'deductInventory'),
        k('inventory', 'deductInventory:compensate'),
        k('orders', 'createOrder'),
        k('orders', 'createOrder:compensate'),
        k('payments', 'createOrder:compensate'),
      ]);
      // The declined charge was not tried again after the restart.
      expect(s.calls[k('payments', 'processPayment')]).toBe(1);
      expect(s).toMatchObject({ stock: INITIAL_STOCK, held: 0, payments: 0, orders: [{ status: 'cancelled' }] });
    }
  });
});

describe('a checkout killed with SIGKILL while it waits for the payment webhook resumes waiting (SQLite)', () => {
  const files: string[] = [];
  let proc: ChildProcess | undefined;
  let rt: Runtime | undefined;
  let shop: ReturnType<typeof openShop> | undefined;
  afterEach(async () => {
    proc?.kill('SIGKILL');
    await rt?.stop();
    shop?.close();
    proc = rt = shop = undefined;
    for (const f of files.splice(0)) removeDb(f);
  });

  it('the webhook sent after the restart completes it; nothing ran twice', async () => {
    const base = tempPath('saga-chaos-webhook');
    const keelDb = `${base}.db`;
    const shopDb = `${base}.shop.db`;
    files.push(keelDb, shopDb);

    const run = runUntil(keelDb, shopDb, 'webhook', 'waiting');
    proc = run.proc;
    await run.reached;
    run.proc.kill('SIGKILL');
    expect(await run.exited).toBe('SIGKILL');
    expect(storedSaga(keelDb)).toEqual({ status: 'running', state: { running: 'paymentConfirmed' } });

    shop = openShop(shopDb);
    rt = createRuntime({ store: sqliteStore({ path: keelDb }) });
    const checkout = rt.saga('checkout', {
      steps: checkoutWithWebhookSteps(shop.api, { paymentTimeoutMs: 600_000 }),
    });
    await rt.start();
    await checkout.signal(ID, PAYMENT_CONFIRMED, { paymentId: 'p-1' });
    const r = await checkout.execute({ customer: 'ada', sku: SKU, qty: QTY, amount: 90 }, { id: ID });
    expect(r).toMatchObject({ status: 'completed', results: { paymentConfirmed: { paymentId: 'p-1' } } });
    const s = shop.state();
    // Every call was made once: the restart resumed the wait, not a step.
    for (const [key, n] of Object.entries(s.calls)) expect(n, key).toBe(1);
    for (const [key, n] of Object.entries(s.applied)) expect(n, key).toBe(1);
    expect(s).toMatchObject({ stock: INITIAL_STOCK - QTY, held: QTY, payments: 1, orders: [{ status: 'open' }] });
  });
});
