/**
 * One worker of `bench/queue-postgres.ts` in a process of its own:
 * `node --import tsx bench/_pgWorker.ts <keel|graphile-worker|pg-boss> <schema> <concurrency>`.
 * It runs no-op jobs and reports how many it ran to its parent (IPC) every
 * 10 ms; it stops on the message `stop`. (`_`: not a benchmark of its own.)
 */
import { run as runGraphile } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { createRuntime, postgresStore } from '../src/index.js';

const URL = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BOSS_BATCH = Number(process.env.BENCH_BOSS_BATCH) || 500;
const [lib, schema, c] = process.argv.slice(2) as [string, string, string];
const concurrency = Number(c);
let done = 0;
const job = async () => {
  done++;
};

/** Starts the library's worker on `schema`; resolves with its stop function. */
async function start(): Promise<() => Promise<void>> {
  if (lib === 'keel') {
    const rt = createRuntime({ store: postgresStore({ connectionString: URL, schema }) });
    rt.queue('bench', { concurrency, handler: job });
    await rt.start();
    return () => rt.stop();
  }
  if (lib === 'graphile-worker') {
    const runner = await runGraphile({
      connectionString: URL,
      schema,
      concurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      logger: new (class {
        scope() {
          return this;
        }
        error() {}
        warn() {}
        info() {}
        debug() {}
      })() as never,
      taskList: { bench: job },
    });
    return () => runner.stop();
  }
  const boss = new PgBoss({ connectionString: URL, schema, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  await boss.work('bench', { batchSize: BOSS_BATCH, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    let next = 0;
    const lane = async () => {
      while (next < jobs.length) {
        next++;
        await job();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  });
  return () => boss.stop({ graceful: false, wait: true });
}

const stop = await start();
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
