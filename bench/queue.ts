/**
 * Task queue throughput: keel (memory store, SQLite store) beside BullMQ 6 on
 * the local Redis, in the same process and the same run.
 *
 * End to end: enqueue N no-op tasks (N = 20,000, env `BENCH_QUEUE_N`), then
 * start the workers and wait until every task is done; tasks/s = N / total
 * time. Both sides enqueue in chunks of 1,000 concurrent calls (keel's
 * `enqueue`, which batches one turn's calls into one transaction; BullMQ's
 * `addBulk`, its fastest path) and delete finished tasks. Also the enqueue
 * rate alone. Runs are interleaved (keel memory, keel sqlite, BullMQ, ...)
 * and the median of `BENCH_QUEUE_RUNS` (default 3) is kept.
 *
 * Retention (issue #16.2): SQLite end to end with the default retention (the
 * last 1,000 succeeded tasks kept in the history table, pruned in the
 * background) beside a queue that keeps nothing (`retention: { succeeded:
 * { count: 0 } }`), aimed at >= 85%.
 *
 * Then (issue #15) keel alone: with priorities, with 10,000 groups and with a
 * `globalConcurrency`, each against the plain queue on the same store in the
 * same run (`_claimVariants.ts`).
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { createRuntime, memoryStore, type RetentionOptions, sqliteStore } from '../src/index.js';
import { claimVariantRows } from './_claimVariants.js';
import { median, ratio, type TableRow } from './harness.js';

const N = Number(process.env.BENCH_QUEUE_N) || 20_000;
const RUNS = Math.max(3, Number(process.env.BENCH_QUEUE_RUNS) || 3);
const CHUNK = 1000;
const REDIS = { host: '127.0.0.1', port: 6379 };

interface Timing {
  enqueueMs: number;
  totalMs: number;
}

type Contender = (concurrency: number) => Promise<Timing>;

/** What "keep nothing" means for the retention rows: no succeeded task is kept in the history. */
const KEEP_NOTHING: RetentionOptions = { succeeded: { count: 0 } };

function keel(kind: 'memory' | 'sqlite', retention?: RetentionOptions): Contender {
  return async (concurrency) => {
    const path = join(tmpdir(), `keel-bench-queue-${process.pid}-${Date.now()}.db`);
    const rt = createRuntime({ store: kind === 'memory' ? memoryStore() : sqliteStore({ path }) });
    let done = 0;
    const q = rt.queue('bench', {
      concurrency,
      paused: true,
      ...(retention !== undefined && { retention }),
      handler: () => {
        done++;
      },
    });
    await rt.start();
    try {
      const t0 = performance.now();
      for (let i = 0; i < N; i += CHUNK) {
        const chunk: Promise<unknown>[] = [];
        for (let j = i; j < Math.min(N, i + CHUNK); j++) chunk.push(q.enqueue({ i: j }));
        await Promise.all(chunk);
      }
      const t1 = performance.now();
      q.resume();
      await q.drain();
      const t2 = performance.now();
      if (done !== N) throw new Error(`keel ${kind}: ran ${done} of ${N} tasks`);
      return { enqueueMs: t1 - t0, totalMs: t2 - t0 };
    } finally {
      await rt.stop();
      for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
    }
  };
}

function bullmq(): Contender {
  let run = 0;
  return async (concurrency) => {
    const name = `keel-bench-${process.pid}-${++run}`;
    const queue = new BullQueue(name, { connection: REDIS });
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const worker = new BullWorker(
      name,
      async () => {
        done++;
      },
      { connection: REDIS, concurrency, autorun: false },
    );
    worker.on('completed', () => {
      if (done === N) finish();
    });
    try {
      const t0 = performance.now();
      for (let i = 0; i < N; i += CHUNK) {
        const jobs = [];
        for (let j = i; j < Math.min(N, i + CHUNK); j++) {
          jobs.push({ name: 'task', data: { i: j }, opts: { removeOnComplete: true, removeOnFail: true } });
        }
        await queue.addBulk(jobs);
      }
      const t1 = performance.now();
      void worker.run();
      await finished;
      const t2 = performance.now();
      return { enqueueMs: t1 - t0, totalMs: t2 - t0 };
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  };
}

/** Starts a local Redis when none answers on 6379. */
async function ensureRedis(): Promise<void> {
  const ping = async () => {
    const r = new Redis({ ...REDIS, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  };
  if (await ping()) return;
  spawnSync('redis-server', ['--port', '6379', '--save', '', '--appendonly', 'no', '--daemonize', 'yes']);
  for (let i = 0; i < 50; i++) {
    if (await ping()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('Redis is not answering on 127.0.0.1:6379 and could not be started');
}

export async function run(): Promise<TableRow[]> {
  await ensureRedis();
  const contenders: Record<string, Contender> = {
    'keel memory': keel('memory'),
    'keel sqlite': keel('sqlite'),
    'keel sqlite keep-nothing': keel('sqlite', KEEP_NOTHING),
    bullmq: bullmq(),
  };
  const rows: TableRow[] = [];
  const enqueue: Record<string, number[]> = {};
  for (const concurrency of [1, 16]) {
    const total: Record<string, number[]> = {};
    // Warm-up: one small pass each, so JIT and connections are ready.
    for (const c of Object.values(contenders)) await c(concurrency);
    for (let r = 0; r < RUNS; r++) {
      const names = Object.keys(contenders);
      for (let k = 0; k < names.length; k++) {
        const name = names[(r + k) % names.length]!;
        const t = await contenders[name]!(concurrency);
        (total[name] ??= []).push(N / (t.totalMs / 1000));
        (enqueue[name] ??= []).push(N / (t.enqueueMs / 1000));
        if (process.env.BENCH_VERBOSE) {
          console.log(
            `  c=${concurrency} ${name}: total ${t.totalMs.toFixed(0)} ms, enqueue ${t.enqueueMs.toFixed(0)} ms`,
          );
        }
      }
    }
    const bull = median(total.bullmq!);
    for (const [name, target] of [
      ['keel memory', 10],
      ['keel sqlite', 1],
    ] as const) {
      const ops = median(total[name]!);
      rows.push({
        name: `end-to-end tasks/s, ${name.slice(5)}, concurrency ${concurrency}`,
        opsPerSec: Math.round(ops),
        vs: 'bullmq (redis)',
        vsOpsPerSec: Math.round(bull),
        ratio: ratio(ops, bull),
        target,
      });
    }
    const kept = median(total['keel sqlite']!);
    const none = median(total['keel sqlite keep-nothing']!);
    rows.push({
      name: `end-to-end tasks/s, sqlite default retention, concurrency ${concurrency}`,
      opsPerSec: Math.round(kept),
      vs: 'sqlite, retention keeps nothing',
      vsOpsPerSec: Math.round(none),
      ratio: ratio(kept, none),
      target: 0.85,
    });
  }
  const bullEnq = median(enqueue.bullmq!);
  for (const name of ['keel memory', 'keel sqlite']) {
    const ops = median(enqueue[name]!);
    rows.push({
      name: `enqueue/s, ${name.slice(5)}`,
      opsPerSec: Math.round(ops),
      vs: 'bullmq addBulk (redis)',
      vsOpsPerSec: Math.round(bullEnq),
      ratio: ratio(ops, bullEnq),
    });
  }
  // Issue #15: priorities, groups and a global limit against the plain queue (bench/_claimVariants.ts).
  rows.push(...(await claimVariantRows('memory', () => ({ store: memoryStore() }), N, RUNS)));
  rows.push(
    ...(await claimVariantRows(
      'sqlite',
      () => {
        const path = join(tmpdir(), `keel-bench-claim-${process.pid}-${Date.now()}.db`);
        return {
          store: sqliteStore({ path }),
          dispose: () => {
            for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
          },
        };
      },
      N,
      RUNS,
    )),
  );
  return rows;
}
