import { createServer, type ServerResponse } from 'node:http';
import { closeServer, listen, readBody } from '../lib/http.js';
import type { CheckoutApi } from './saga.js';
import { ServiceError, type Shop } from './services.js';

/** One request a service received, for logs and tests. */
export interface Received {
  service: string;
  path: string;
  key: string;
  status: number;
}

/** A route: the service, the request's idempotency key and JSON body in, a JSON answer out (or a `ServiceError`). */
type Route = (key: string, body: any) => unknown;

/** A service on its own port. */
export interface Running {
  readonly url: string;
  close(): Promise<void>;
}

/** The three services of a shop, each on its own HTTP server on 127.0.0.1. */
export interface ShopServers {
  orders: Running;
  inventory: Running;
  payments: Running;
  close(): Promise<void>;
}

/**
 * Serves each service of `shop` on its own port (port 0: the system picks).
 * Writes are `POST` with JSON and an `Idempotency-Key` header; a
 * `ServiceError` becomes its status with `{ code, message }`.
 */
export async function serveShop(shop: Shop, onRequest: (r: Received) => void = () => {}): Promise<ShopServers> {
  const orders = await serve('orders', onRequest, {
    '/orders': (key, body) => shop.orders.create(key, body),
    '/orders/cancel': (key, body) => shop.orders.cancel(key, body.orderId),
  });
  const inventory = await serve('inventory', onRequest, {
    '/inventory/take': (key, body) => shop.inventory.take(key, body),
    '/inventory/put': (key, body) => shop.inventory.put(key, body.orderId),
  });
  const payments = await serve('payments', onRequest, {
    '/payments/charge': (key, body) => shop.payments.charge(key, body),
    '/payments/void': (key, body) => shop.payments.void(key, body.orderId),
  });
  return {
    orders,
    inventory,
    payments,
    async close() {
      await Promise.all([orders.close(), inventory.close(), payments.close()]);
    },
  };
}

async function serve(service: string, onRequest: (r: Received) => void, routes: Record<string, Route>) {
  const server = createServer(async (req, res) => {
    const path = req.url ?? '';
    const key = req.headers['idempotency-key'];
    const answer = (status: number, body: unknown) => {
      onRequest({ service, path, key: typeof key === 'string' ? key : '', status });
      reply(res, status, body);
    };
    const route = routes[path];
    if (req.method !== 'POST' || !route) return answer(404, { code: 'NOT_FOUND', message: `no route ${path}` });
    if (typeof key !== 'string' || key === '') {
      return answer(400, { code: 'NO_KEY', message: 'writes need an Idempotency-Key header' });
    }
    try {
      const body = JSON.parse(await readBody(req)) as unknown;
      answer(200, route(key, body));
    } catch (error) {
      if (error instanceof ServiceError) answer(error.status, { code: error.code, message: error.reason });
      else answer(400, { code: 'BAD_REQUEST', message: String(error) });
    }
  });
  return { url: await listen(server), close: () => closeServer(server) };
}

/** The saga's view of a shop served by `serveShop`: each call is one HTTP request. */
export function httpApi(servers: Pick<ShopServers, 'orders' | 'inventory' | 'payments'>): CheckoutApi {
  const post = async (service: string, url: string, key: string, body: unknown, signal: AbortSignal) => {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw error;
      // Refused or reset connection: the service is unreachable, which a retry may fix.
      throw new ServiceError(service, 503, 'UNREACHABLE', String((error as Error).message));
    }
    const json = (await res.json()) as { code?: string; message?: string };
    if (!res.ok) throw new ServiceError(service, res.status, json.code ?? 'ERROR', json.message ?? res.statusText);
    return json as any;
  };
  const { orders, inventory, payments } = servers;
  return {
    createOrder: (key, req, signal) => post('orders', `${orders.url}/orders`, key, req, signal),
    cancelOrder: (key, orderId, signal) => post('orders', `${orders.url}/orders/cancel`, key, { orderId }, signal),
    takeStock: (key, hold, signal) => post('inventory', `${inventory.url}/inventory/take`, key, hold, signal),
    restock: (key, orderId, signal) => post('inventory', `${inventory.url}/inventory/put`, key, { orderId }, signal),
    charge: (key, req, signal) => post('payments', `${payments.url}/payments/charge`, key, req, signal),
    voidPayment: (key, orderId, signal) => post('payments', `${payments.url}/payments/void`, key, { orderId }, signal),
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
