/**
 * What tracing costs when nobody records: keel with `@opentelemetry/api`
 * installed and no SDK registered (what every app that does not trace gets,
 * since the API is a dependency of half the ecosystem) beside the same keel
 * with the API absent (tracing off), in the same process and the same run.
 *
 * Rows: queue throughput (enqueue 100 no-op tasks, then drain; tasks/s) on
 * the memory and SQLite stores, and saga throughput (execute a 3-step saga;
 * sagas/s) on the memory store. The runtime with the API checks for an
 * active span at each enqueue/execute (there is none without an SDK, so
 * nothing is stored) and starts a non-recording span per attempt. Target:
 * within 5% (ratio >= 0.95). The two are interleaved round by round and the
 * median is kept.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryStore, type Runtime, sqliteStore } from '../src/index.js';
import { createRuntimeWith, type RuntimeOptions } from '../src/runtime/createRuntime.js';
import { telemetrySupport } from '../src/telemetry/support.js';
import { serveMetrics } from '../src/viewer/server.js';
import { compare, type TableRow } from './harness.js';

const load = createRequire(import.meta.url);
const TASKS = 100;
const TARGET = 0.95;

/** A runtime whose telemetry finds `@opentelemetry/api` (as installed here), or one that does not. */
function runtime(withApi: boolean, options: RuntimeOptions): Runtime {
  const support = telemetrySupport({
    serveMetrics,
    load: (name) => {
      if (!withApi && name === '@opentelemetry/api') {
        throw Object.assign(new Error(`Cannot find module '${name}'`), { code: 'MODULE_NOT_FOUND' });
      }
      return load(name);
    },
  });
  return createRuntimeWith(options, undefined, support);
}

type Setup = { op: () => Promise<unknown>; rt: Runtime; check: () => void };

async function queueCase(withApi: boolean, store: 'memory' | 'sqlite', paths: string[]): Promise<Setup> {
  const path = join(tmpdir(), `keel-bench-telemetry-${process.pid}-${paths.length}.db`);
  paths.push(path);
  const rt = runtime(withApi, { store: store === 'memory' ? memoryStore() : sqliteStore({ path }) });
  let done = 0;
  let asked = 0;
  const q = rt.queue('bench', {
    concurrency: 10,
    handler: () => {
      done++;
    },
  });
  await rt.start();
  return {
    rt,
    op: async () => {
      const all: Promise<unknown>[] = [];
      for (let i = 0; i < TASKS; i++) all.push(q.enqueue({ i }));
      asked += TASKS;
      await Promise.all(all);
      await q.drain();
    },
    check: () => {
      if (done !== asked) throw new Error(`ran ${done} of ${asked} tasks`);
    },
  };
}

async function sagaCase(withApi: boolean): Promise<Setup> {
  const rt = runtime(withApi, { store: memoryStore() });
  let completed = 0;
  let asked = 0;
  const saga = rt.saga('order', {
    steps: [
      { name: 'reserve', run: () => 'r', compensate: () => {} },
      { name: 'charge', run: () => 'c', compensate: () => {} },
      { name: 'ship', run: () => 's' },
    ],
  });
  await rt.start();
  return {
    rt,
    op: async () => {
      asked++;
      if ((await saga.execute({})).status === 'completed') completed++;
    },
    check: () => {
      if (completed !== asked) throw new Error(`completed ${completed} of ${asked} sagas`);
    },
  };
}

async function row(name: string, make: (withApi: boolean) => Promise<Setup>, opsPerCall: number): Promise<TableRow[]> {
  const traced = await make(true);
  const plain = await make(false);
  try {
    return await compare({
      name,
      keel: traced.op,
      vs: { 'keel, no @opentelemetry/api': plain.op },
      opsPerCall,
      target: TARGET,
      check: () => {
        traced.check();
        plain.check();
      },
    });
  } finally {
    await traced.rt.stop();
    await plain.rt.stop();
  }
}

/** The rows: API present without an SDK, against the API absent. */
export async function run(): Promise<TableRow[]> {
  const paths: string[] = [];
  try {
    return [
      ...(await row('queue, memory: API, no SDK (tasks/s)', (w) => queueCase(w, 'memory', paths), TASKS)),
      ...(await row('queue, sqlite: API, no SDK (tasks/s)', (w) => queueCase(w, 'sqlite', paths), TASKS)),
      ...(await row('saga, memory, 3 steps: API, no SDK (sagas/s)', sagaCase, 1)),
    ];
  } finally {
    for (const p of paths) for (const s of ['', '-wal', '-shm']) rmSync(p + s, { force: true });
  }
}
