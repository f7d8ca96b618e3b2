/**
 * Orders, inventory and payments for the saga crash tests, kept in their own
 * SQLite file so their state outlives a killed saga process, as real services
 * would. Each write is one transaction that records its idempotency key: a
 * key seen before returns the first answer and applies nothing. Every call is
 * logged (`calls`), every applied effect too (`applied`, not unique), so a test
 * can tell "called twice" from "applied twice".
 */
import Database from 'better-sqlite3';
import type { CheckoutApi } from '../../examples/checkout/saga.js';
import { ServiceError } from '../../examples/checkout/services.js';

export const SKU = 'chair';
export const INITIAL_STOCK = 10;

/** Progress of a call: `call` on arrival, `applied` once its transaction committed; `key` is `<service> <idempotency key>`. */
export type Tap = (what: 'call' | 'applied', key: string) => void;

export interface ShopOptions {
  /** Delay before applying and again before answering: the window a kill lands in. */
  slowMs?: number;
  /** The payment provider declines every card. */
  decline?: boolean;
  tap?: Tap;
}

/** What the shop's tables hold now, for assertions. */
export interface ShopState {
  stock: number;
  orders: Array<{ id: string; status: string }>;
  held: number;
  payments: number;
  /** How many times each `<service> <idempotency key>` was received. */
  calls: Record<string, number>;
  /** How many times each `<service> <idempotency key>` took effect. */
  applied: Record<string, number>;
}

/** Opens (creating when new) the shop's database at `path`. */
export function openShop(path: string, options: ShopOptions = {}) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, answer TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS calls (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, n INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, status TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS held (order_id TEXT PRIMARY KEY, qty INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS payments (order_id TEXT PRIMARY KEY, amount INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS voided (order_id TEXT PRIMARY KEY);
    INSERT OR IGNORE INTO stock (sku, n) VALUES ('${SKU}', ${INITIAL_STOCK});
  `);
  const slowMs = options.slowMs ?? 0;
  const tap = options.tap ?? (() => {});
  const sleep = () => (slowMs > 0 ? new Promise((r) => setTimeout(r, slowMs)) : Promise.resolve());

  /** Applies `write` once per key, in one transaction with the record of its answer. The key names its service: each service dedupes on its own. */
  const once = <T>(key: string, write: () => T): T =>
    db.transaction(() => {
      const seen = db.prepare('SELECT answer FROM replies WHERE key = ?').get(key) as { answer: string } | undefined;
      if (seen) return JSON.parse(seen.answer) as T;
      const answer = write();
      db.prepare('INSERT INTO replies (key, answer) VALUES (?, ?)').run(key, JSON.stringify(answer));
      db.prepare('INSERT INTO applied (key) VALUES (?)').run(key);
      return answer;
    })();

  const call = async <T>(service: string, idempotencyKey: string, write: () => T): Promise<T> => {
    const key = `${service} ${idempotencyKey}`;
    db.prepare('INSERT INTO calls (key) VALUES (?)').run(key);
    tap('call', key);
    await sleep();
    const answer = once(key, write);
    tap('applied', key);
    await sleep();
    return answer;
  };

  const api: CheckoutApi = {
    createOrder: (key) =>
      call('orders', key, () => {
        // The order id comes from the key: a replayed create finds the same order.
        const id = `ord-${key.split(':')[0]}`;
        db.prepare(`INSERT INTO orders (id, status) VALUES (?, 'open')`).run(id);
        return { orderId: id };
      }),
    cancelOrder: (key, orderId) =>
      call('orders', key, () => {
        db.prepare(`UPDATE orders SET status = 'cancelled' WHERE id = ?`).run(orderId);
        return { orderId };
      }),
    takeStock: (key, hold) =>
      call('inventory', key, () => {
        const { n } = db.prepare('SELECT n FROM stock WHERE sku = ?').get(hold.sku) as { n: number };
        if (n < hold.qty) throw new ServiceError('inventory', 409, 'OUT_OF_STOCK', `${n} left`);
        db.prepare('UPDATE stock SET n = n - ? WHERE sku = ?').run(hold.qty, hold.sku);
        db.prepare('INSERT INTO held (order_id, qty) VALUES (?, ?)').run(hold.orderId, hold.qty);
        return { orderId: hold.orderId };
      }),
    restock: (key, orderId) =>
      call('inventory', key, () => {
        const h = db.prepare('SELECT qty FROM held WHERE order_id = ?').get(orderId) as { qty: number } | undefined;
        if (h) {
          db.prepare('DELETE FROM held WHERE order_id = ?').run(orderId);
          db.prepare('UPDATE stock SET n = n + ? WHERE sku = ?').run(h.qty, SKU);
        }
        return { orderId, restocked: h?.qty ?? 0 };
      }),
    charge: (key, req) =>
      call('payments', key, () => {
        if (db.prepare('SELECT 1 FROM voided WHERE order_id = ?').get(req.orderId)) {
          throw new ServiceError('payments', 409, 'ORDER_VOIDED', `order ${req.orderId} was voided`);
        }
        if (options.decline) throw new ServiceError('payments', 402, 'DECLINED', 'card declined');
        db.prepare('INSERT INTO payments (order_id, amount) VALUES (?, ?)').run(req.orderId, req.amount);
        return { paymentId: `pay-${req.orderId}` };
      }),
    voidPayment: (key, orderId) =>
      call('payments', key, () => {
        const refunded = db.prepare('DELETE FROM payments WHERE order_id = ?').run(orderId).changes;
        db.prepare('INSERT OR IGNORE INTO voided (order_id) VALUES (?)').run(orderId);
        return { orderId, refunded };
      }),
  };

  const counts = (table: string) =>
    Object.fromEntries(
      (
        db.prepare(`SELECT key, count(*) AS n FROM ${table} GROUP BY key`).all() as Array<{ key: string; n: number }>
      ).map((r) => [r.key, r.n]),
    );

  return {
    api,
    state(): ShopState {
      return {
        stock: (db.prepare('SELECT n FROM stock WHERE sku = ?').get(SKU) as { n: number }).n,
        orders: db.prepare('SELECT id, status FROM orders ORDER BY id').all() as ShopState['orders'],
        held: (db.prepare('SELECT coalesce(sum(qty), 0) AS n FROM held').get() as { n: number }).n,
        payments: (db.prepare('SELECT count(*) AS n FROM payments').get() as { n: number }).n,
        calls: counts('calls'),
        applied: counts('applied'),
      };
    },
    close: () => db.close(),
  };
}
