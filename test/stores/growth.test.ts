import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { PRUNE_EVERY_MS } from '../../src/actors/queue/retention.js';
import { createRuntime, memoryStore, postgresStore, type Runtime, sqliteStore } from '../../src/index.js';
import type { Store } from '../../src/stores/store.js';
import { TestClock } from '../../src/testing/index.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema, withClient } from '../fixtures/pg.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { until } from '../fixtures/wait.js';

/**
 * The store stays bounded however many tasks pass through (issue #16.2): the
 * normal suite runs 10,000 tasks per store (seconds); `KEEL_GROWTH=1` runs
 * 1,000,000 (minutes; `KEEL_GROWTH_TASKS` sets another total) and also checks
 * that the process's heap does not grow with the total.
 */
const GROWTH = process.env.KEEL_GROWTH === '1';
const TOTAL = GROWTH ? Number(process.env.KEEL_GROWTH_TASKS ?? 1_000_000) : 10_000;
const CHUNK = 5_000;
const KEEP = 100;
/** Heap the run may add after its first tenth: far below what keeping every task would take (~0.5 KB each). */
const HEAP_SLACK = 32 * 1024 * 1024;

/** The heap in use after a full collection: what the process keeps, not the garbage it has not collected yet. */
function liveHeap(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

interface Subject {
  store: Store;
  /** Finished tasks the store still holds (history rows and dead rows). */
  finished: () => Promise<number>;
  /** Every row of the queue's tasks, live or finished. */
  rows: () => Promise<number>;
  cleanup: () => Promise<void>;
}

/** Counts what the memory store keeps by paging through its own list: everything it holds of the queue. */
function memorySubject(): Subject {
  const store = memoryStore();
  const count = async () => {
    let finished = 0;
    let rows = 0;
    let after: string | undefined;
    for (;;) {
      const page = await store.list('g', { limit: 1000, ...(after !== undefined && { after }) }, 0);
      rows += page.items.length;
      finished += page.items.filter((i) => i.state === 'succeeded' || i.state === 'dead').length;
      if (page.next === undefined) return { finished, rows };
      after = page.next;
    }
  };
  return {
    store,
    finished: async () => (await count()).finished,
    rows: async () => (await count()).rows,
    cleanup: async () => {},
  };
}

function sqliteSubject(): Subject {
  const path = `${tempPath('growth')}.db`;
  const store = sqliteStore({ path });
  let db: Database.Database | undefined;
  const one = (sql: string) => ((db ??= new Database(path, { readonly: true })).prepare(sql).get() as { n: number }).n;
  const history = () => one(`SELECT count(*) AS n FROM keel_task_history`);
  return {
    store,
    finished: async () => history() + one(`SELECT count(*) AS n FROM keel_tasks WHERE state = 'dead'`),
    rows: async () => history() + one(`SELECT count(*) AS n FROM keel_tasks`),
    cleanup: async () => {
      db?.close();
      removeDb(path);
    },
  };
}

function postgresSubject(): Subject {
  const schema = uniqueSchema('growth');
  const store = postgresStore({ connectionString: PG_URL, schema });
  const one = (sql: string) =>
    withClient(async (c) => Number((await c.query(sql.replaceAll('$s', `"${schema}"`))).rows[0].n));
  const history = () => one(`SELECT count(*) AS n FROM $s.task_history`);
  return {
    store,
    finished: async () => (await history()) + (await one(`SELECT count(*) AS n FROM $s.tasks WHERE state = 'dead'`)),
    rows: async () => (await history()) + (await one(`SELECT count(*) AS n FROM $s.tasks`)),
    cleanup: () => dropSchema(schema),
  };
}

/**
 * `drain` on a shared store re-reads its counts every 25 ms of the runtime
 * clock while this process is idle: the test clock must move for it, or a
 * drain whose last read still saw work waits forever (it hung a Postgres run).
 */
async function drained(q: { drain(): Promise<void> }, clock: TestClock): Promise<void> {
  let done = false;
  const drain = q.drain().finally(() => {
    done = true;
  });
  while (!done) await clock.advance(25);
  await drain;
}

const subjects: Array<[string, boolean, () => Subject]> = [
  ['memory', true, memorySubject],
  ['sqlite', true, sqliteSubject],
  ['postgres', pgAvailable, postgresSubject],
];

describe.each(subjects)('growth: %s store stays bounded', (name, available, make) => {
  let rt: Runtime | undefined;
  let subject: Subject | undefined;
  afterEach(async () => {
    await rt?.stop();
    await subject?.cleanup();
  });

  it.skipIf(!available)(
    `${TOTAL.toLocaleString('en')} tasks through a queue keeping ${KEEP}: finished rows never pile up`,
    { timeout: GROWTH ? 1_800_000 : 120_000 },
    async () => {
      const held = make();
      subject = held;
      const clock = new TestClock(1_000);
      rt = createRuntime({ store: subject.store, clock });
      let n = 0;
      const q = rt.queue('g', {
        concurrency: 50,
        retention: { succeeded: { count: KEEP }, dead: { count: KEEP } },
        handler: async (t) => {
          // One in a hundred dies: dead rows are bounded too.
          if ((t.payload as number) % 100 === 0) throw Object.assign(new Error('no'), { code: 'NON_RETRYABLE' });
          n++;
        },
      });
      await rt.start();
      const began = Date.now();
      let peak = 0;
      let heapAtTenth = 0;
      let heapPeak = 0;
      for (let sent = 0; sent < TOTAL; sent += CHUNK) {
        await Promise.all(Array.from({ length: CHUNK }, (_, i) => q.enqueue(sent + i)));
        await drained(q, clock);
        // The pruner's rounds: they delete in batches until only what retention keeps is left. A round that
        // was still deleting (real I/O) when the clock moved arms the next one a period later: time moves on
        // as it would in a live process, and the wait is bounded in real time, not in turns.
        await until(
          async () => {
            await clock.advance(PRUNE_EVERY_MS);
            return (await held.finished()) <= 2 * KEEP;
          },
          120_000,
          'the pruner round',
          5,
        ).catch(() => {});
        peak = Math.max(peak, await subject.rows());
        expect(await subject.finished()).toBeLessThanOrEqual(2 * KEEP);
        // A full collection costs tens of ms: sampled ten times a run.
        if (Math.floor((sent + CHUNK) / (TOTAL / 10)) > Math.floor(sent / (TOTAL / 10))) {
          const heap = liveHeap();
          if (heapAtTenth === 0) heapAtTenth = heap;
          heapPeak = Math.max(heapPeak, heap);
        }
      }
      expect(n).toBe(TOTAL - TOTAL / 100);
      expect((await q.stats()).succeeded).toBe(TOTAL - TOTAL / 100);
      // After every pruner round the rows are back under the bound, whatever the total so far.
      expect(peak).toBeLessThanOrEqual(2 * KEEP);
      const mb = (b: number) => Math.round(b / 1024 / 1024);
      console.log(
        `growth ${name}: ${TOTAL} tasks in ${Math.round((Date.now() - began) / 1000)} s; rows kept at most ${peak}; ` +
          `live heap ${mb(heapAtTenth)} MB at a tenth, at most ${mb(heapPeak)} MB; rss ${mb(process.memoryUsage().rss)} MB`,
      );
      // A heap that grew with the total would pass the slack long before a million tasks.
      if (GROWTH) expect(heapPeak - heapAtTenth).toBeLessThan(HEAP_SLACK);
    },
  );
});
