/**
 * The process the saga crash test kills: on a keel SQLite file it runs one
 * checkout with slow services (kept in their own SQLite file) and prints
 * `call <key>` / `applied <key>` as the services see each request, so the test
 * can kill it at an exact point. Prints `DONE <status>` if it lives that long.
 * Usage: node --import tsx test/chaos/sagaChild.ts <keel.db> <shop.db> <sagaId> <ok|decline> <slowMs>
 */
import { checkoutSteps } from '../../examples/checkout/saga.js';
import { createRuntime, sqliteStore } from '../../src/index.js';
import { openShop, SKU } from './sagaServices.js';

const [keelDb, shopDb, id, mode, slowMs] = process.argv.slice(2);
const shop = openShop(shopDb!, {
  slowMs: Number(slowMs),
  decline: mode === 'decline',
  tap: (what, key) => process.stdout.write(`${what} ${key}\n`),
});
const rt = createRuntime({ store: sqliteStore({ path: keelDb! }) });
const checkout = rt.saga('checkout', { steps: checkoutSteps(shop.api) });
await rt.start();
const r = await checkout.execute({ customer: 'ada', sku: SKU, qty: 3, amount: 90 }, { id: id! });
process.stdout.write(`DONE ${r.status}\n`);
await rt.stop();
shop.close();
