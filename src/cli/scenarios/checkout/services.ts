/**
 * The three services of the checkout scenario, as plain in-process objects:
 * each owns its own state and knows nothing of the others or of the saga.
 * Every write takes an idempotency key; a key seen before returns the first
 * answer again without applying anything twice, which is what makes a retried
 * or resumed saga step safe. `http.ts` puts each one behind its own HTTP server.
 */

/** A refusal or an outage, with the HTTP status the service would answer. */
export class ServiceError extends Error {
  constructor(
    readonly service: string,
    readonly status: number,
    readonly code: string,
    /** The reason without the service's name, as the service answers it. */
    readonly reason: string,
  ) {
    super(`${service}: ${reason}`);
    this.name = 'ServiceError';
  }

  /** 5xx: the service could not answer now; trying again may work. 4xx: a business refusal. */
  get transient(): boolean {
    return this.status >= 500;
  }
}

/** Answers already given, by idempotency key: a repeated key gets the same answer and changes nothing. */
class Replies {
  private readonly done = new Map<string, unknown>();
  /** How many writes were applied (a replayed key does not count). */
  applied = 0;
  /** How many writes were replayed from a key seen before. */
  replayed = 0;

  once<T>(key: string, apply: () => T): T {
    if (this.done.has(key)) {
      this.replayed++;
      return this.done.get(key) as T;
    }
    const answer = apply();
    this.done.set(key, answer);
    this.applied++;
    return answer;
  }
}

const unavailable = (service: string) => new ServiceError(service, 503, 'UNAVAILABLE', 'service unavailable');

/** A new order. */
export interface OrderRequest {
  customer: string;
  sku: string;
  qty: number;
  amount: number;
}

export interface Order extends OrderRequest {
  orderId: string;
  status: 'open' | 'cancelled';
}

/** The orders service: creates and cancels orders. */
export class OrdersService {
  readonly orders = new Map<string, Order>();
  readonly replies = new Replies();
  /** The next this many cancels fail with 503 (a flaky cancel endpoint). */
  failCancels = 0;
  private next = 1;

  create(key: string, req: OrderRequest): { orderId: string } {
    return this.replies.once(key, () => {
      const orderId = `ord-${this.next++}`;
      this.orders.set(orderId, { ...req, orderId, status: 'open' });
      return { orderId };
    });
  }

  cancel(key: string, orderId: string): { orderId: string; status: 'cancelled' } {
    if (this.failCancels > 0) {
      this.failCancels--;
      throw unavailable('orders');
    }
    return this.replies.once(key, () => {
      const order = this.orders.get(orderId);
      if (!order) throw new ServiceError('orders', 404, 'NO_SUCH_ORDER', `no order ${orderId}`);
      order.status = 'cancelled';
      return { orderId, status: 'cancelled' as const };
    });
  }
}

/** A deduction of stock for one order. */
export interface Hold {
  orderId: string;
  sku: string;
  qty: number;
}

/** The inventory service: stock per SKU, and what each order holds of it. */
export class InventoryService {
  readonly stock = new Map<string, number>();
  /** Units taken out of stock, by order, until they are put back. */
  readonly held = new Map<string, Hold>();
  readonly replies = new Replies();

  constructor(initial: Record<string, number> = {}) {
    for (const [sku, n] of Object.entries(initial)) this.stock.set(sku, n);
  }

  take(key: string, hold: Hold): { orderId: string; left: number } {
    return this.replies.once(key, () => {
      const left = this.stock.get(hold.sku) ?? 0;
      if (left < hold.qty) {
        throw new ServiceError(
          'inventory',
          409,
          'OUT_OF_STOCK',
          `only ${left} of ${hold.sku} left, ${hold.qty} wanted`,
        );
      }
      if (this.held.has(hold.orderId)) {
        throw new ServiceError('inventory', 409, 'ALREADY_HELD', `order ${hold.orderId} already holds stock`);
      }
      this.stock.set(hold.sku, left - hold.qty);
      this.held.set(hold.orderId, { ...hold });
      return { orderId: hold.orderId, left: left - hold.qty };
    });
  }

  /** Puts back what `orderId` holds; an order that holds nothing is a no-op (it was already put back). */
  put(key: string, orderId: string): { orderId: string; restocked: number } {
    return this.replies.once(key, () => {
      const hold = this.held.get(orderId);
      if (!hold) return { orderId, restocked: 0 };
      this.held.delete(orderId);
      this.stock.set(hold.sku, (this.stock.get(hold.sku) ?? 0) + hold.qty);
      return { orderId, restocked: hold.qty };
    });
  }
}

export interface Payment {
  paymentId: string;
  orderId: string;
  amount: number;
}

/** How the payment provider behaves now. */
export type PaymentsMode = 'ok' | 'decline' | 'down';

/** The payments service: charges an order once; a voided order is refunded and can no longer be charged. */
export class PaymentsService {
  readonly payments = new Map<string, Payment>();
  /** Orders voided: any charge was refunded, and later charges are refused. */
  readonly voided = new Set<string>();
  readonly replies = new Replies();
  mode: PaymentsMode = 'ok';
  private next = 1;

  charge(key: string, req: { orderId: string; amount: number }): Payment {
    if (this.mode === 'down') throw unavailable('payments');
    return this.replies.once(key, () => {
      if (this.voided.has(req.orderId)) {
        throw new ServiceError('payments', 409, 'ORDER_VOIDED', `order ${req.orderId} was voided`);
      }
      if (this.mode === 'decline') throw new ServiceError('payments', 402, 'DECLINED', 'card declined');
      if (this.payments.has(req.orderId)) {
        throw new ServiceError('payments', 409, 'ALREADY_PAID', `order ${req.orderId} is already paid`);
      }
      const payment = { paymentId: `pay-${this.next++}`, orderId: req.orderId, amount: req.amount };
      this.payments.set(req.orderId, payment);
      return { ...payment };
    });
  }

  /**
   * Refunds whatever `orderId` was charged and refuses any later charge for it:
   * a charge whose answer was lost (a timeout) may still land after the saga
   * gave up on it, and this is what keeps it from sticking.
   */
  void(key: string, orderId: string): { orderId: string; refunded: number } {
    if (this.mode === 'down') throw unavailable('payments');
    return this.replies.once(key, () => {
      const paid = this.payments.get(orderId);
      this.payments.delete(orderId);
      this.voided.add(orderId);
      return { orderId, refunded: paid?.amount ?? 0 };
    });
  }
}

/** The three services of one shop. */
export interface Shop {
  orders: OrdersService;
  inventory: InventoryService;
  payments: PaymentsService;
}

/** A shop with `initial` units in stock per SKU and every service healthy. */
export function createShop(initial: Record<string, number>): Shop {
  return { orders: new OrdersService(), inventory: new InventoryService(initial), payments: new PaymentsService() };
}
