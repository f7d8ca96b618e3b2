/**
 * One process of the fleet the console test watches: on a shared Postgres
 * schema it works the queue `emails` (a task with `fail: true` dies at once),
 * starts the saga `order` `<label>-1` (its step `approve` waits for the signal
 * `approved`), and opens the fleet breaker `payments`. It prints `READY`, then
 * `RAN <id>` for each task it runs and `SAGA <id> <status>` as a saga ends; a task with `hold: true`
 * runs until its signal aborts, then prints `ABORTED <id> <reason code>`.
 * Usage: node --import tsx test/cli/fleetWorker.ts <connectionString> <schema> <label>
 */
import { createRuntime, NonRetryableError, postgresStore } from '../../src/index.js';

const [connectionString, schema, label] = process.argv.slice(2);
const rt = createRuntime({
  store: postgresStore({ connectionString: connectionString!, schema: schema!, poolSize: 3 }),
  onError: (error, detail) => process.stderr.write(`worker ${label}: ${detail}: ${String(error)}\n`),
});
rt.queue('emails', {
  pollMs: 100,
  handler: async (task) => {
    process.stdout.write(`RAN ${task.id}\n`);
    const payload = task.payload as { fail?: boolean; hold?: boolean };
    if (payload.fail) throw new NonRetryableError('mailbox full');
    if (payload.hold) {
      await new Promise<void>((resolve) => task.signal.addEventListener('abort', () => resolve()));
      const reason = task.signal.reason as { code?: string } | undefined;
      process.stdout.write(`ABORTED ${task.id} ${reason?.code ?? String(reason)}\n`);
      throw task.signal.reason;
    }
  },
});
const payments = rt.breaker('payments', { scope: 'fleet', failureThreshold: 2, resetTimeoutMs: 600_000 });
const order = rt.saga('order', {
  pollMs: 100,
  steps: [
    { name: 'reserve', run: async () => 'reserved', compensate: async () => {} },
    { name: 'approve', waitFor: 'approved' },
  ],
});
await rt.start();
const id = `${label}-1`;
void order.execute({ label }, { id }).then(
  (r) => process.stdout.write(`SAGA ${id} ${r.status}\n`),
  (e) => process.stdout.write(`SAGA ${id} error ${String(e)}\n`),
);
for (let i = 0; i < 2; i++) await payments.call(async () => Promise.reject(new Error('down'))).catch(() => {});
process.stdout.write('READY\n');
process.on('SIGTERM', () => {
  void rt.stop().finally(() => process.exit(0));
});
