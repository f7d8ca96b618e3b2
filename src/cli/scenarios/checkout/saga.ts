import { NonRetryableError, type StepContext } from '../../../index.js';
import { type Hold, type OrderRequest, ServiceError, type Shop } from './services.js';

/**
 * How the saga reaches the three services: over HTTP (`http.ts`), in process
 * (`inProcess` below) or through a test double. Every call carries the step's
 * idempotency key and may be aborted.
 */
export interface CheckoutApi {
  createOrder(key: string, req: OrderRequest, signal: AbortSignal): Promise<{ orderId: string }>;
  cancelOrder(key: string, orderId: string, signal: AbortSignal): Promise<unknown>;
  takeStock(key: string, hold: Hold, signal: AbortSignal): Promise<unknown>;
  restock(key: string, orderId: string, signal: AbortSignal): Promise<unknown>;
  charge(key: string, req: { orderId: string; amount: number }, signal: AbortSignal): Promise<{ paymentId: string }>;
  voidPayment(key: string, orderId: string, signal: AbortSignal): Promise<unknown>;
}

/** What a checkout is given. */
export type CheckoutInput = OrderRequest;

type Ctx = StepContext<CheckoutInput>;

/**
 * A business refusal (4xx: declined, out of stock) will not change on a retry,
 * so it becomes a `NonRetryableError` and the saga compensates at once; an
 * outage (5xx, network) is left as is and retried by the saga's policy.
 */
async function refusalsFinal<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ServiceError && !error.transient) {
      throw Object.assign(new NonRetryableError(error.message, { cause: error }), { status: error.status });
    }
    throw error;
  }
}

/**
 * The checkout steps: createOrder → deductInventory → processPayment, undone
 * by cancelOrder (which voids any charge of the order) and restock. Payment is
 * the last step and has no undo: once it succeeded the checkout is complete.
 * Each call passes the step's idempotency key, so a retried or resumed step
 * changes nothing twice downstream.
 */
export function checkoutSteps(api: CheckoutApi) {
  return [
    {
      name: 'createOrder',
      run: (ctx: Ctx) => refusalsFinal(() => api.createOrder(ctx.idempotencyKey, ctx.input, ctx.signal)),
      // Cancelling the order voids its payment first. The payment step has no undo of its own (when it
      // succeeds the checkout is over), but when it fails by timing out the charge may still land later;
      // the void refunds it or fences it off.
      compensate: async (ctx: Ctx) => {
        const orderId = orderIdOf(ctx.results);
        await refusalsFinal(() => api.voidPayment(ctx.idempotencyKey, orderId, ctx.signal));
        return refusalsFinal(() => api.cancelOrder(ctx.idempotencyKey, orderId, ctx.signal));
      },
    },
    {
      name: 'deductInventory',
      run: (ctx: Ctx) =>
        refusalsFinal(() =>
          api.takeStock(
            ctx.idempotencyKey,
            { orderId: orderIdOf(ctx.results), sku: ctx.input.sku, qty: ctx.input.qty },
            ctx.signal,
          ),
        ),
      compensate: (ctx: Ctx) =>
        refusalsFinal(() => api.restock(ctx.idempotencyKey, orderIdOf(ctx.results), ctx.signal)),
    },
    {
      name: 'processPayment',
      run: (ctx: Ctx) =>
        refusalsFinal(() =>
          api.charge(ctx.idempotencyKey, { orderId: orderIdOf(ctx.results), amount: ctx.input.amount }, ctx.signal),
        ),
    },
  ] as const;
}

/** The signal the payment provider's webhook sends when a charge settled. */
export const PAYMENT_CONFIRMED = 'payment.confirmed';

/**
 * The checkout as a real shop runs it: createOrder, then reserve the stock and
 * authorise the card at once (a parallel group), then wait for the payment
 * provider's webhook (`saga.signal(id, 'payment.confirmed', { paymentId })`)
 * for at most `paymentTimeoutMs`. A declined card aborts or undoes the
 * reservation; a webhook that never comes voids the payment, restocks and
 * cancels the order. Its payload is the `paymentConfirmed` result.
 */
export function checkoutWithWebhookSteps(api: CheckoutApi, options: { paymentTimeoutMs: number }) {
  const [createOrder, deductInventory, processPayment] = checkoutSteps(api);
  return [
    createOrder,
    {
      name: 'reserveAndAuthorise',
      parallel: [
        deductInventory,
        {
          ...processPayment,
          // Side by side with the reservation, a charge that went through is voided when the reservation fails.
          compensate: (ctx: Ctx) =>
            refusalsFinal(() => api.voidPayment(ctx.idempotencyKey, orderIdOf(ctx.results), ctx.signal)),
        },
      ],
    },
    { name: 'paymentConfirmed', waitFor: PAYMENT_CONFIRMED, timeoutMs: options.paymentTimeoutMs },
  ] as const;
}

function orderIdOf(results: Record<string, any>): string {
  return (results.createOrder as { orderId: string }).orderId;
}

/** The saga's view of a shop whose services run in this process (no network). */
export function inProcess(shop: Shop): CheckoutApi {
  return {
    createOrder: async (key, req) => shop.orders.create(key, req),
    cancelOrder: async (key, orderId) => shop.orders.cancel(key, orderId),
    takeStock: async (key, hold) => shop.inventory.take(key, hold),
    restock: async (key, orderId) => shop.inventory.put(key, orderId),
    charge: async (key, req) => shop.payments.charge(key, req),
    voidPayment: async (key, orderId) => shop.payments.void(key, orderId),
  };
}
