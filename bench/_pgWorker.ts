/**
 * One worker of `bench/queue-postgres.ts` in a process of its own:
 * `node --import tsx bench/_pgWorker.ts <keel|graphile-worker|pg-boss> <schema> <concurrency>`.
 * It runs no-op jobs and reports how many it ran to its parent (IPC) every
 * 10 ms; it stops on the message `stop`. (`_`: not a benchmark of its own.)
 */
import { type Lib, startWorker } from './_pgLibs.js';

const [lib, schema, concurrency] = process.argv.slice(2) as [Lib, string, string];
let done = 0;
const stop = await startWorker(lib, schema, Number(concurrency), async () => {
  done++;
});
let sent = -1;
const report = setInterval(() => {
  if (done !== sent) process.send?.({ done: (sent = done) });
}, 10);
process.send?.({ ready: true });
process.on('message', async (m) => {
  if (m !== 'stop') return;
  clearInterval(report);
  await stop();
  process.disconnect?.();
});
