import { createRuntime } from '../../index.js';
import type { DemoLog } from '../demoLog.js';
import { httpApi, serveShop } from './checkout/http.js';
import { type CheckoutApi, checkoutWithWebhookSteps, PAYMENT_CONFIRMED } from './checkout/saga.js';
import { createShop } from './checkout/services.js';

const SKU = 'keyboard';
const INITIAL_STOCK = 5;
/** How long a checkout waits for the payment provider's webhook before it gives up and undoes itself. */
const PAYMENT_TIMEOUT_MS = 300;
/** What undoing each step is called in the summary. */
const UNDO: Record<string, string> = {
  processPayment: 'void payment',
  deductInventory: 'restock',
  createOrder: 'void payment + cancelOrder',
};

/**
 * Checkout as an orchestrated saga over three independent HTTP services
 * (orders, inventory, payments), as a real shop runs it: create the order,
 * then reserve the stock and authorise the card at once (a parallel step),
 * then wait for the payment provider's webhook (a signal with a timeout).
 * One checkout completes when its webhook arrives; the next meets a declined
 * card, so its reservation is undone and its order cancelled (that endpoint
 * fails once and is retried); for the third the webhook never comes, and once
 * the wait times out the payment is voided, the stock put back and the order
 * cancelled.
 */
export async function demo(log: DemoLog): Promise<void> {
  const shop = createShop({ [SKU]: INITIAL_STOCK });
  const servers = await serveShop(shop, (r) =>
    log.line(
      r.service,
      `${r.path.padEnd(17)} ${String(r.status)} key ${r.key}`,
      r.status >= 400 ? 'failure' : undefined,
    ),
  );
  const rt = createRuntime();
  try {
    // Why a checkout is undone is told under `checkout`; what the saga does next is under `saga`, which the
    // demo leaves out when its state timeline already shows each step (see `echoes` in demo.ts).
    rt.bus.subscribe('saga.checkout.>', (p: any, e) => {
      const what = e.type.slice('saga.checkout.'.length);
      if (what === 'compensating') {
        log.line(
          'checkout',
          `${p.sagaId}: ${p.failedStep} failed (${p.error?.message}); undoing what completed`,
          'failure',
        );
      } else if (what === 'failed') {
        log.line('checkout', `${p.sagaId}: an undo kept failing (${p.compensationError?.message})`, 'failure');
      }
      const detail =
        what === 'stepCompleted'
          ? `results: ${Object.keys(p.results).join(', ')}`
          : what === 'compensated'
            ? `undone in order: ${p.compensated.join(' → ')}`
            : '';
      log.line('saga', `${p.sagaId} ${what} ${detail}`.trimEnd());
    });

    // The payment provider: a charge it authorised is reported to the shop's webhook as soon as it settles,
    // which hands it to the checkout as a signal. The signal is kept if it comes before the saga waits for it
    // (here it usually does: the other branch of the parallel step may still be running), so nothing is timed.
    const provider = { webhooks: true };
    const http = httpApi(servers);
    const api: CheckoutApi = {
      ...http,
      charge: async (key, req, signal) => {
        const paid = await http.charge(key, req, signal);
        const sagaId = key.slice(0, key.lastIndexOf(':'));
        if (provider.webhooks) {
          log.line('webhook', `${PAYMENT_CONFIRMED} ${paid.paymentId} for ${sagaId}`);
          // Not awaited: the provider's call is not part of the charge the step made.
          checkout.signal(sagaId, PAYMENT_CONFIRMED, { paymentId: paid.paymentId }).catch((error: unknown) => {
            log.line('webhook', `${sagaId}: refused (${(error as Error).message})`, 'failure');
          });
        } else {
          log.line('webhook', `(the provider never calls back for ${sagaId})`, 'failure');
        }
        return paid;
      },
    };
    const checkout = rt.saga('checkout', {
      steps: checkoutWithWebhookSteps(api, { paymentTimeoutMs: PAYMENT_TIMEOUT_MS }),
      stepTimeoutMs: 2_000,
      retry: { maxAttempts: 3, initialDelayMs: 30, jitter: false },
      compensationRetry: { maxAttempts: 4, initialDelayMs: 30, jitter: false },
    });
    await rt.start();

    const paid = await checkout.execute({ customer: 'ada', sku: SKU, qty: 2, amount: 98 }, { id: 'checkout-1' });

    shop.payments.mode = 'decline';
    shop.orders.failCancels = 1;
    const declined = await checkout.execute({ customer: 'bob', sku: SKU, qty: 1, amount: 49 }, { id: 'checkout-2' });

    shop.payments.mode = 'ok';
    provider.webhooks = false;
    const silent = await checkout.execute({ customer: 'cy', sku: SKU, qty: 1, amount: 49 }, { id: 'checkout-3' });

    const results = [paid, declined, silent];
    const held = [...shop.inventory.held.values()].reduce((n, h) => n + h.qty, 0);
    const cancelledPaid = [...shop.payments.payments.values()].filter(
      (p) => shop.orders.orders.get(p.orderId)?.status !== 'open',
    ).length;
    const count = (s: string) => results.filter((r) => r.status === s).length;
    const undone = (r: (typeof results)[number]) =>
      r.status === 'completed' ? '-' : r.compensated.map((s) => UNDO[s]).join(' → ');
    log.summary(
      `checkout: ${count('completed')} completed after the payment webhook, ${count('compensated')} compensated ` +
        `(declined card undone as ${undone(declined)}; no webhook within ${PAYMENT_TIMEOUT_MS} ms undone as ${undone(silent)}); ` +
        `stock ${shop.inventory.stock.get(SKU)} + ${held} held = ${INITIAL_STOCK}; ` +
        `${cancelledPaid} payments kept for cancelled orders`,
    );
  } finally {
    await rt.stop();
    await servers.close();
  }
}
