/**
 * The process the crash test kills: on a SQLite file it enqueues `total`
 * tasks (printing `E <n>` once each enqueue resolved) while a slow handler
 * works them (appending `<n>` to the log file when a delivery completes).
 * Usage: node --import tsx test/chaos/child.ts <db> <log> <total>
 */
import { appendFileSync } from 'node:fs';
import { createRuntime, sqliteStore } from '../../src/index.js';

const [db, log, totalArg] = process.argv.slice(2);
const total = Number(totalArg);
const rt = createRuntime({ store: sqliteStore({ path: db! }) });
const q = rt.queue('chaos', {
  concurrency: 4,
  leaseMs: 400,
  handler: async (task) => {
    await new Promise((r) => setTimeout(r, 25));
    appendFileSync(log!, `${(task.payload as { n: number }).n}\n`);
  },
});
await rt.start();
process.stdout.write('READY\n');
for (let n = 0; n < total; n++) {
  await q.enqueue({ n }, { key: `task-${n}` });
  process.stdout.write(`E ${n}\n`);
  await new Promise((r) => setTimeout(r, 3));
}
await q.drain();
process.stdout.write('DONE\n');
await rt.stop();
