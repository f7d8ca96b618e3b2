import { createRuntime } from '../../index.js';
import type { DemoLog } from '../demoLog.js';
import { httpApi, serveShop } from './checkout/http.js';
import { checkoutSteps } from './checkout/saga.js';
import { createShop } from './checkout/services.js';

const SKU = 'keyboard';
const INITIAL_STOCK = 5;
/** What undoing each step is called in the summary. */
const UNDO: Record<string, string> = { deductInventory: 'restock', createOrder: 'void payment + cancelOrder' };

/**
 * Checkout as an orchestrated saga over three independent HTTP services
 * (orders, inventory, payments): one checkout completes; the next meets a
 * declined card and is undone in reverse (restock, then void the payment and
 * cancel the order, whose endpoint fails once and is retried); a third asks
 * for more than is in stock, so only its order is cancelled.
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
    const checkout = rt.saga('checkout', {
      steps: checkoutSteps(httpApi(servers)),
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
    const tooMany = await checkout.execute({ customer: 'cy', sku: SKU, qty: 9, amount: 441 }, { id: 'checkout-3' });

    const results = [paid, declined, tooMany];
    const held = [...shop.inventory.held.values()].reduce((n, h) => n + h.qty, 0);
    const cancelledPaid = [...shop.payments.payments.values()].filter(
      (p) => shop.orders.orders.get(p.orderId)?.status !== 'open',
    ).length;
    const count = (s: string) => results.filter((r) => r.status === s).length;
    log.summary(
      `checkout: ${count('completed')} completed, ${count('compensated')} compensated ` +
        `(declined card undone as ${declined.status === 'completed' ? '-' : declined.compensated.map((s) => UNDO[s]).join(' → ')}); ` +
        `stock ${shop.inventory.stock.get(SKU)} + ${held} held = ${INITIAL_STOCK}; ` +
        `${cancelledPaid} payments kept for cancelled orders`,
    );
  } finally {
    await rt.stop();
    await servers.close();
  }
}
