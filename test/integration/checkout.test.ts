import { afterEach, describe, expect, it } from 'vitest';
import { httpApi, type Received, type ShopServers, serveShop } from '../../examples/checkout/http.js';
import {
  type CheckoutApi,
  checkoutSteps,
  checkoutWithWebhookSteps,
  inProcess,
  PAYMENT_CONFIRMED,
} from '../../examples/checkout/saga.js';
import { createShop, ServiceError, type Shop } from '../../examples/checkout/services.js';
import { demo } from '../../examples/checkout.js';
import { createRuntime, memoryStore, type Runtime, sqliteStore } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const SKU = 'lamp';
const order = (qty = 2, customer = 'ada') => ({ customer, sku: SKU, qty, amount: 10 * qty });
const fast = { maxAttempts: 3, initialDelayMs: 5, jitter: false };

let rt: Runtime | undefined;
let servers: ShopServers | undefined;
const files: string[] = [];

afterEach(async () => {
  await rt?.stop();
  await servers?.close();
  rt = servers = undefined;
  for (const f of files.splice(0)) removeDb(f);
});

/** A shop with 5 lamps behind HTTP, a started runtime with the checkout saga, and what the services and the bus saw. */
async function setUp(configure: (shop: Shop, r: Received) => void = () => {}) {
  const shop = createShop({ [SKU]: 5 });
  const requests: Received[] = [];
  servers = await serveShop(shop, (r) => {
    requests.push(r);
    configure(shop, r);
  });
  rt = createRuntime();
  const events: string[] = [];
  rt.bus.subscribe('saga.checkout.>', (_p, e) => {
    events.push(e.type.slice('saga.checkout.'.length));
  });
  const checkout = rt.saga('checkout', {
    steps: checkoutSteps(httpApi(servers)),
    retry: fast,
    compensationRetry: fast,
  });
  await rt.start();
  const calls = () => requests.map((r) => `${r.path} ${r.status}`);
  return { shop, checkout, events, requests, calls };
}

describe('checkout over three HTTP services', () => {
  it('completes: an order, its stock held, one payment', async () => {
    const { shop, checkout, events, requests } = await setUp();
    const r = await checkout.execute(order(), { id: 'c1' });
    expect(r.status).toBe('completed');
    if (r.status !== 'completed') return;
    const orderId = r.results.createOrder.orderId;
    expect(shop.orders.orders.get(orderId)?.status).toBe('open');
    expect(shop.inventory.stock.get(SKU)).toBe(3);
    expect(shop.inventory.held.get(orderId)?.qty).toBe(2);
    expect(shop.payments.payments.get(orderId)).toMatchObject({
      amount: 20,
      paymentId: r.results.processPayment.paymentId,
    });
    expect(events).toEqual(['started', 'stepCompleted', 'stepCompleted', 'stepCompleted', 'completed']);
    // Every request carried its step's key.
    expect(requests.map((q) => q.key)).toEqual(['c1:createOrder', 'c1:deductInventory', 'c1:processPayment']);
  });

  it('a declined card undoes the finished steps in reverse: restock, then void the payment and cancel the order', async () => {
    const { shop, checkout, events, calls, requests } = await setUp();
    shop.payments.mode = 'decline';
    const r = await checkout.execute(order(), { id: 'c2' });
    expect(r).toMatchObject({
      status: 'compensated',
      failedStep: 'processPayment',
      compensated: ['deductInventory', 'createOrder'],
    });
    // A refusal is not retried: one charge request, then the undo in reverse order.
    expect(calls()).toEqual([
      '/orders 200',
      '/inventory/take 200',
      '/payments/charge 402',
      '/inventory/put 200',
      '/payments/void 200',
      '/orders/cancel 200',
    ]);
    expect(requests.slice(3).map((q) => q.key)).toEqual([
      'c2:deductInventory:compensate',
      'c2:createOrder:compensate',
      'c2:createOrder:compensate',
    ]);
    expect(shop.inventory.stock.get(SKU)).toBe(5);
    expect(shop.inventory.held.size).toBe(0);
    expect([...shop.orders.orders.values()].map((o) => o.status)).toEqual(['cancelled']);
    expect(shop.payments.payments.size).toBe(0);
    expect(events).toEqual(['started', 'stepCompleted', 'stepCompleted', 'compensating', 'compensated']);
  });

  it('out of stock undoes only the order: nothing was deducted', async () => {
    const { shop, checkout, calls } = await setUp();
    const r = await checkout.execute(order(6), { id: 'c3' });
    expect(r).toMatchObject({ status: 'compensated', failedStep: 'deductInventory', compensated: ['createOrder'] });
    expect(calls()).toEqual(['/orders 200', '/inventory/take 409', '/payments/void 200', '/orders/cancel 200']);
    expect(shop.inventory.stock.get(SKU)).toBe(5);
    expect(shop.payments.payments.size).toBe(0);
  });

  it('retries a payment outage with the same key and completes', async () => {
    const { shop, checkout, calls, requests } = await setUp((s, r) => {
      // The provider comes back after its first 503.
      if (r.path === '/payments/charge' && r.status === 503) s.payments.mode = 'ok';
    });
    shop.payments.mode = 'down';
    const r = await checkout.execute(order(), { id: 'c4' });
    expect(r.status).toBe('completed');
    expect(calls().slice(2)).toEqual(['/payments/charge 503', '/payments/charge 200']);
    expect(requests.slice(2).map((q) => q.key)).toEqual(['c4:processPayment', 'c4:processPayment']);
    expect(shop.payments.payments.size).toBe(1);
  });

  it('compensates when payments stay down past the retry policy, voiding once they are back', async () => {
    let charges = 0;
    const { shop, checkout, calls } = await setUp((s, r) => {
      // The outage outlasts the step's retries, then ends.
      if (r.path === '/payments/charge' && ++charges === fast.maxAttempts) s.payments.mode = 'ok';
    });
    shop.payments.mode = 'down';
    const r = await checkout.execute(order(), { id: 'c5' });
    expect(r).toMatchObject({ status: 'compensated', failedStep: 'processPayment' });
    expect(calls().filter((c) => c === '/payments/charge 503')).toHaveLength(fast.maxAttempts);
    expect(calls().slice(-3)).toEqual(['/inventory/put 200', '/payments/void 200', '/orders/cancel 200']);
    expect(shop.inventory.stock.get(SKU)).toBe(5);
  });

  it('keeps the order open (and says why) while payments cannot confirm the void', async () => {
    const { shop, checkout } = await setUp();
    shop.payments.mode = 'down';
    const r = await checkout.execute(order(), { id: 'c5b' });
    expect(r).toMatchObject({
      status: 'failed',
      failedStep: 'processPayment',
      compensated: ['deductInventory'],
      compensationError: { message: 'payments: service unavailable' },
    });
    expect(shop.inventory.stock.get(SKU)).toBe(5);
    expect([...shop.orders.orders.values()].map((o) => o.status)).toEqual(['open']);
  });

  it('retries a flaky cancel endpoint; the order is cancelled once', async () => {
    const { shop, checkout, calls } = await setUp();
    shop.payments.mode = 'decline';
    shop.orders.failCancels = 2;
    const r = await checkout.execute(order(), { id: 'c6' });
    expect(r.status).toBe('compensated');
    expect(calls().filter((c) => c.startsWith('/orders/cancel'))).toEqual([
      '/orders/cancel 503',
      '/orders/cancel 503',
      '/orders/cancel 200',
    ]);
    expect(shop.orders.replies.applied).toBe(2); // one create, one cancel
    // The void before each try of the cancel was applied once, then answered from memory.
    expect(shop.payments.replies).toMatchObject({ applied: 1, replayed: 2 });
  });

  it('ends failed, and says so, when the cancel endpoint stays down', async () => {
    const { shop, checkout } = await setUp();
    shop.payments.mode = 'decline';
    shop.orders.failCancels = 99;
    const r = await checkout.execute(order(), { id: 'c7' });
    expect(r).toMatchObject({
      status: 'failed',
      failedStep: 'processPayment',
      compensated: ['deductInventory'],
      compensationError: { message: 'orders: service unavailable' },
    });
    // The stock came back; the order is left open for a person, and the result says which one.
    expect(shop.inventory.stock.get(SKU)).toBe(5);
    expect([...shop.orders.orders.values()].map((o) => o.status)).toEqual(['open']);
  });

  it('the services apply a repeated idempotency key once and answer the same', async () => {
    const { shop } = await setUp();
    const api = httpApi(servers!);
    const signal = new AbortController().signal;
    const a = await api.createOrder('k1', order(), signal);
    const b = await api.createOrder('k1', order(), signal);
    expect(b).toEqual(a);
    await api.takeStock('k2', { orderId: a.orderId, sku: SKU, qty: 2 }, signal);
    await api.takeStock('k2', { orderId: a.orderId, sku: SKU, qty: 2 }, signal);
    await api.restock('k3', a.orderId, signal);
    await api.restock('k3', a.orderId, signal);
    expect(shop.inventory.stock.get(SKU)).toBe(5);
    expect(shop.orders.orders.size).toBe(1);
    expect(shop.inventory.replies).toMatchObject({ applied: 2, replayed: 2 });
  });

  it('an id that finished returns its stored result without calling anyone again', async () => {
    const { checkout, requests } = await setUp();
    const first = await checkout.execute(order(), { id: 'c8' });
    const seen = requests.length;
    const again = await checkout.execute(order(5), { id: 'c8' });
    expect(again).toEqual(first);
    expect(requests.length).toBe(seen);
  });
});

describe('checkout interrupted on SQLite', () => {
  /** A shop whose `hang` call never answers, like a process that died in the middle of it. */
  function hanging(shop: Shop, hang: keyof CheckoutApi): { api: CheckoutApi; reached: Promise<void> } {
    const api = inProcess(shop);
    let reached!: () => void;
    const p = new Promise<void>((r) => (reached = r));
    return {
      api: {
        ...api,
        [hang]: async (...args: [string, any, AbortSignal]) => {
          await (api[hang] as (...a: typeof args) => Promise<unknown>)(...args);
          reached();
          return new Promise(() => {});
        },
      },
      reached: p,
    };
  }

  it.each([
    ['the payment (it completes)', 'charge', 'completed', 'ok'],
    ['the restock (it compensates)', 'restock', 'compensated', 'decline'],
  ] as const)(
    'a new runtime resumes a saga stopped in %s; each effect applied once',
    async (_what, hang, status, mode) => {
      const path = `${tempPath('checkout')}.db`;
      files.push(path);
      const shop = createShop({ [SKU]: 5 });
      shop.payments.mode = mode;
      const first = createRuntime({ store: sqliteStore({ path }) });
      const h = hanging(shop, hang);
      const saga1 = first.saga('checkout', { steps: checkoutSteps(h.api), shutdownGraceMs: 0 });
      await first.start();
      const interrupted = saga1.execute(order(), { id: 'r1' });
      await h.reached;
      // The effect went through downstream, but the saga never heard back.
      await first.stop();
      await expect(interrupted).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });

      rt = createRuntime({ store: sqliteStore({ path }) });
      const saga2 = rt.saga('checkout', { steps: checkoutSteps(inProcess(shop)) });
      await rt.start();
      const r = await saga2.execute(order(), { id: 'r1' });
      expect(r.status).toBe(status);
      expect(shop.orders.orders.size).toBe(1);
      if (status === 'completed') {
        expect(shop.payments.payments.size).toBe(1);
        expect(shop.payments.replies).toMatchObject({ applied: 1, replayed: 1 });
        expect(shop.inventory.stock.get(SKU)).toBe(3);
      } else {
        expect(shop.inventory.replies).toMatchObject({ applied: 2, replayed: 1 }); // take, put (+ the resumed put)
        expect(shop.inventory.stock.get(SKU)).toBe(5);
        expect([...shop.orders.orders.values()][0]?.status).toBe('cancelled');
      }
    },
  );
});

describe('a saga interrupted by stop() stays where stop() left it', () => {
  /** Stops a runtime while its payment is in flight, lets the payment answer afterwards, and reads the stored saga. */
  async function paymentAnswersAfterStop(inspect: (() => void) | undefined) {
    const store = memoryStore();
    const shop = createShop({ [SKU]: 5 });
    let answer: (() => void) | undefined;
    const api: CheckoutApi = {
      ...inProcess(shop),
      // Like a provider that ignores the abort: it answers when it answers.
      charge: (key, req) => new Promise((resolve) => (answer = () => resolve(shop.payments.charge(key, req)))),
    };
    const first = createRuntime({ store, inspect });
    const checkout = first.saga('checkout', { steps: checkoutSteps(api), shutdownGraceMs: 0 });
    await first.start();
    const run = checkout.execute(order(), { id: 'late' });
    while (!answer) await new Promise((r) => setTimeout(r, 1));
    await first.stop();
    await expect(run).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
    const atStop = await store.loadSaga('checkout', 'late');
    answer();
    await new Promise((r) => setTimeout(r, 20));
    return { atStop, after: await store.loadSaga('checkout', 'late') };
  }

  it('inspected (each saga mirrored by an actor)', async () => {
    const { atStop, after } = await paymentAnswersAfterStop(() => {});
    expect(atStop).toMatchObject({ status: 'running', state: JSON.stringify({ running: 'processPayment' }) });
    expect(after).toEqual(atStop);
  });

  // A step that answers after stop() must not move the saga on (it once saved `completed` after stop() returned).
  it('not inspected', async () => {
    const { atStop, after } = await paymentAnswersAfterStop(undefined);
    expect(atStop).toMatchObject({ status: 'running', state: JSON.stringify({ running: 'processPayment' }) });
    expect(after).toEqual(atStop);
  });
});

describe('a charge whose answer is lost and that lands late', () => {
  /** Payments that time out to the saga while the charge itself goes through when `land` is called. */
  function lateCharge(shop: Shop) {
    let land: () => unknown = () => {};
    const api: CheckoutApi = {
      ...inProcess(shop),
      charge: (key, req) => {
        land = () => shop.payments.charge(key, req);
        return Promise.reject(new ServiceError('payments', 504, 'TIMEOUT', 'gateway timeout'));
      },
    };
    return { api, land: () => land() };
  }

  it('is refunded when it landed before the order was cancelled', async () => {
    const shop = createShop({ [SKU]: 5 });
    const late = lateCharge(shop);
    rt = createRuntime();
    const checkout = rt.saga('checkout', {
      steps: checkoutSteps({
        ...late.api,
        restock: async (key, orderId) => {
          late.land();
          return shop.inventory.put(key, orderId);
        },
      }),
    });
    await rt.start();
    const r = await checkout.execute(order(), { id: 'l1' });
    expect(r).toMatchObject({ status: 'compensated', failedStep: 'processPayment' });
    expect(shop.payments.replies.applied).toBe(2); // the late charge, then the void that refunded it
    expect(shop.payments.payments.size).toBe(0);
  });

  it('is refused when it lands after the order was cancelled', async () => {
    const shop = createShop({ [SKU]: 5 });
    const late = lateCharge(shop);
    rt = createRuntime();
    const checkout = rt.saga('checkout', { steps: checkoutSteps(late.api) });
    await rt.start();
    const r = await checkout.execute(order(), { id: 'l2' });
    expect(r.status).toBe('compensated');
    expect(() => late.land()).toThrow(expect.objectContaining({ code: 'ORDER_VOIDED' }));
    expect(shop.payments.payments.size).toBe(0);
  });
});

describe('the checkout demo', () => {
  it('runs the webhook checkout: one completed by its webhook, one declined, one whose webhook never came', async () => {
    const lines: string[] = [];
    const summaries: string[] = [];
    await demo({
      section: () => {},
      line: (who, text) => lines.push(`${who} ${text}`),
      summary: (t) => summaries.push(t),
    });
    expect(summaries).toEqual([
      'checkout: 1 completed after the payment webhook, 2 compensated (declined card undone as restock → void payment + cancelOrder; ' +
        'no webhook within 300 ms undone as void payment → restock → void payment + cancelOrder); ' +
        'stock 3 + 2 held = 5; 0 payments kept for cancelled orders',
    ]);
    expect(lines).toContain('webhook payment.confirmed pay-1 for checkout-1');
    expect(lines).toContain(
      'saga checkout-1 stepCompleted results: createOrder, deductInventory, processPayment, paymentConfirmed',
    );
    const undo = (id: string) =>
      lines.filter((l) => l.includes(`${id}:`) && l.includes(':compensate')).map((l) => l.split(' ')[0]);
    expect(undo('checkout-2')).toEqual(['inventory', 'payments', 'orders', 'payments', 'orders']);
    expect(lines).toContain('saga checkout-2 compensated undone in order: deductInventory → createOrder');
    // No webhook: the wait times out and the authorised payment is voided first.
    expect(lines).toContain('webhook (the provider never calls back for checkout-3)');
    expect(undo('checkout-3')).toEqual(['payments', 'inventory', 'payments', 'orders']);
    expect(lines).toContain(
      'saga checkout-3 compensated undone in order: processPayment → deductInventory → createOrder',
    );
  });
});

describe('checkout with a parallel reserve-and-authorise and a payment webhook', () => {
  const TIMEOUT = 60_000;

  /** An in-process shop whose payments provider confirms by webhook only when the test says so. */
  async function webhookShop() {
    const shop = createShop({ [SKU]: 5 });
    const clock = new TestClock(1_000);
    rt = createRuntime({ clock, onError: () => {} });
    const checkout = rt.saga('checkout', {
      steps: checkoutWithWebhookSteps(inProcess(shop), { paymentTimeoutMs: TIMEOUT }),
      compensationRetry: { maxAttempts: 1 },
    });
    await rt.start();
    /** Money and stock are conserved: every unit is in stock or held by an open order, every payment by one. */
    const conserved = () => {
      const held = [...shop.inventory.held.values()].reduce((n, h) => n + h.qty, 0);
      expect((shop.inventory.stock.get(SKU) ?? 0) + held).toBe(5);
      for (const [orderId, p] of shop.payments.payments) {
        expect({ orderId, open: shop.orders.orders.get(orderId)?.status === 'open' }).toEqual({ orderId, open: true });
        expect(p.amount).toBeGreaterThan(0);
      }
    };
    return { shop, clock, checkout, conserved };
  }

  it('completes when the webhook confirms the payment; its payload is the result', async () => {
    const { shop, checkout, conserved } = await webhookShop();
    const run = checkout.execute(order(), { id: 'w1' });
    await settle();
    expect(checkout.stateOf('w1')).toEqual({ running: 'paymentConfirmed' });
    const paymentId = [...shop.payments.payments.values()][0]?.paymentId;
    await checkout.signal('w1', PAYMENT_CONFIRMED, { paymentId });
    const r = await run;
    expect(r).toMatchObject({ status: 'completed', results: { paymentConfirmed: { paymentId } } });
    expect(shop.inventory.stock.get(SKU)).toBe(3);
    conserved();
  });

  it('a webhook that never comes times out: the payment is voided, the stock put back, the order cancelled', async () => {
    const { shop, clock, checkout, conserved } = await webhookShop();
    const run = checkout.execute(order(), { id: 'w2' });
    await settle();
    await clock.advance(TIMEOUT);
    const r = await run;
    expect(r).toMatchObject({
      status: 'compensated',
      failedStep: 'paymentConfirmed',
      error: { code: 'STEP_TIMEOUT' },
      compensated: ['processPayment', 'deductInventory', 'createOrder'],
    });
    expect(shop.inventory.stock.get(SKU)).toBe(5);
    expect(shop.payments.payments.size).toBe(0);
    conserved();
  });

  it('a declined card undoes the reservation made beside it', async () => {
    const { shop, checkout, conserved } = await webhookShop();
    shop.payments.mode = 'decline';
    const r = await checkout.execute(order(), { id: 'w3' });
    expect(r).toMatchObject({
      status: 'compensated',
      failedStep: 'processPayment',
      compensated: ['deductInventory', 'createOrder'],
    });
    expect(shop.inventory.stock.get(SKU)).toBe(5);
    conserved();
  });

  it('a webhook sent before the saga waits for it is kept; a customer can cancel while it waits', async () => {
    const { shop, checkout, conserved } = await webhookShop();
    // The provider is faster than the shop: its webhook arrives while the saga is still reserving.
    const early = checkout.execute(order(1, 'early'), { id: 'w4' });
    await checkout.signal('w4', PAYMENT_CONFIRMED, { paymentId: 'p-early' });
    expect(await early).toMatchObject({ status: 'completed', results: { paymentConfirmed: { paymentId: 'p-early' } } });

    void checkout.execute(order(2, 'fickle'), { id: 'w5' });
    await settle();
    expect(await checkout.cancel('w5', 'customer changed their mind')).toMatchObject({
      status: 'cancelled',
      reason: 'customer changed their mind',
      compensated: ['processPayment', 'deductInventory', 'createOrder'],
    });
    expect(shop.inventory.stock.get(SKU)).toBe(4);
    conserved();
  });
});
