/**
 * One of the runtimes the multi-process test starts (and kills). It works the
 * queue `mp` on a shared Postgres schema and prints one line per delivery:
 * `S <n> <pid> <ms>` when the handler starts, `E <n> <pid> <ms>` before it
 * returns (pipes are synchronous on Linux, so an `E` is out before the task
 * is settled). SIGTERM stops the runtime gracefully.
 * Usage: node --import tsx test/multiprocess/worker.ts <connectionString> <schema> <leaseMs>
 */
import { createRuntime, postgresStore } from '../../src/index.js';

const [connectionString, schema, leaseMs] = process.argv.slice(2);
const rt = createRuntime({
  store: postgresStore({ connectionString: connectionString!, schema: schema!, poolSize: 4 }),
  // On stderr (inherited by the test): a failing run then shows what went wrong in which process.
  onError: (error, detail) => process.stderr.write(`worker ${process.pid}: ${detail}: ${String(error)}\n`),
});
const pid = process.pid;
rt.queue('mp', {
  concurrency: 8,
  batchSize: 16,
  leaseMs: Number(leaseMs),
  pollMs: 100,
  handler: async (task) => {
    const n = (task.payload as { n: number }).n;
    process.stdout.write(`S ${n} ${pid} ${Date.now()}\n`);
    await new Promise((r) => setTimeout(r, 2 + Math.random() * 3));
    process.stdout.write(`E ${n} ${pid} ${Date.now()}\n`);
  },
});
await rt.start();
process.stdout.write('READY\n');
process.on('SIGTERM', () => {
  void rt.stop().finally(() => process.exit(0));
});
