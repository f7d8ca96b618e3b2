import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KeelError, memoryStore, postgresStore, type Runtime } from '../../src/index.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';
import { sleep, until } from '../fixtures/wait.js';

const fresh = freshSchemas('q');

/** Ends every connection whose application_name is `app` (a database restart, as far as those clients can tell). */
const terminate = (app: string) =>
  withClient(async (c) => {
    const r = await c.query(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [app],
    );
    return r.rows[0].n as number;
  });

describe.skipIf(!pgAvailable)('queue on postgres (real time)', () => {
  const runtimes: Runtime[] = [];
  const runtime = (schema: string, extra: Record<string, unknown> = {}) => {
    const rt = createRuntime({
      store: postgresStore({ connectionString: PG_URL, schema, poolSize: 4, ...extra }),
      onError: () => {},
    });
    runtimes.push(rt);
    return rt;
  };
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((rt) => rt.stop().catch(() => {})));
  });

  it('drain returns soon after another runtime finished the queue, not a poll interval later', async () => {
    const schema = fresh();
    const producer = runtime(schema);
    const q = producer.queue('drained', { pollMs: 60_000 });
    await producer.start();
    for (let n = 0; n < 20; n++) await q.enqueue({ n });
    let finished = 0;
    const worker = runtime(schema);
    worker.queue('drained', { pollMs: 60_000, concurrency: 4, handler: async () => void finished++ });
    const started = Date.now();
    await worker.start();
    await q.drain();
    expect(finished).toBe(20);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('two runtimes on one schema share a queue: every task runs once, both do work', async () => {
    const schema = fresh();
    const seen = new Map<number, string>();
    const twice: number[] = [];
    const make = (who: string) => {
      const rt = runtime(schema);
      const q = rt.queue('share', {
        concurrency: 4,
        batchSize: 8,
        handler: async (t) => {
          const n = (t.payload as { n: number }).n;
          if (seen.has(n)) twice.push(n);
          seen.set(n, who);
          await sleep(1);
        },
      });
      return { rt, q };
    };
    const a = make('a');
    const b = make('b');
    await Promise.all([a.rt.start(), b.rt.start()]);
    await Promise.all(Array.from({ length: 400 }, (_, n) => a.q.enqueue({ n })));
    await until(() => seen.size === 400);
    await a.q.drain();
    expect(twice).toEqual([]);
    const byB = [...seen.values()].filter((w) => w === 'b').length;
    expect(byB).toBeGreaterThan(0);
    expect(byB).toBeLessThan(400);
    expect(await a.q.stats()).toEqual({ pending: 0, active: 0, retrying: 0, succeeded: 400, dead: 0, cancelled: 0 });
  });

  it('a lease left by a vanished worker runs out and another runtime takes the task, counting the attempt', async () => {
    const schema = fresh();
    const ghost = postgresStore({ connectionString: PG_URL, schema });
    await ghost.open();
    await ghost.enqueue('lease', [{ payload: '"x"', runAt: 0 }], Date.now());
    const [claimed] = await ghost.claim('lease', {
      limit: 1,
      now: Date.now(),
      leaseUntil: Date.now() + 300,
      token: 'ghost',
    });
    expect(claimed).toBeDefined();
    await ghost.close(); // the worker is gone without settling
    const attempts: number[] = [];
    const rt = runtime(schema);
    const q = rt.queue('lease', { pollMs: 50, handler: async (t) => void attempts.push(t.attempt) });
    await rt.start();
    await until(() => attempts.length === 1);
    expect(attempts).toEqual([2]);
    await q.drain();
  });

  it('NOTIFY wakes an idle worker at once, without waiting for its poll', async () => {
    const schema = fresh();
    const producer = runtime(schema);
    const worker = runtime(schema);
    const pq = producer.queue('wake');
    const got: number[] = [];
    worker.queue('wake', { pollMs: 60_000, handler: async (t) => void got.push(Date.now() - (t.payload as number)) });
    await Promise.all([producer.start(), worker.start()]);
    await sleep(300); // the worker has claimed nothing and sleeps for a minute
    await pq.enqueue(Date.now());
    await until(() => got.length === 1, 15_000);
    // Far below the one-minute poll: the NOTIFY woke it.
    expect(got[0]).toBeLessThan(10_000);
  });

  it('a lost notification only delays work until the next poll', async () => {
    const schema = fresh();
    const rt = runtime(schema);
    const got: unknown[] = [];
    rt.queue('lost', { pollMs: 200, handler: async (t) => void got.push(t.payload) });
    await rt.start();
    await sleep(100);
    // Written behind keel's back: no NOTIFY is sent.
    await withClient((c) =>
      c.query(
        `INSERT INTO "${schema}".tasks (queue, state, payload, run_at, created_at, updated_at)
         VALUES ('lost', 'pending', '"quiet"', 0, 0, 0)`,
      ),
    );
    await until(() => got.length === 1, 3000);
    expect(got).toEqual(['quiet']);
  });

  it('connections killed mid-run (a database restart): nothing is lost, nothing dies, LISTEN comes back', async () => {
    const schema = fresh();
    const app = `keel_kill_${process.pid}_${Date.now()}`;
    const rt = runtime(schema, { applicationName: app });
    const done = new Set<number>();
    const q = rt.queue('restart', {
      concurrency: 8,
      leaseMs: 600,
      pollMs: 100,
      retry: { maxAttempts: 50, initialDelayMs: 10 },
      handler: async (t) => {
        await sleep(2);
        done.add((t.payload as { n: number }).n);
      },
    });
    await rt.start();
    await Promise.all(Array.from({ length: 600 }, (_, n) => q.enqueue({ n })));
    await until(() => done.size >= 100);
    expect(await terminate(app)).toBeGreaterThan(0);
    await until(() => done.size >= 300);
    await terminate(app);
    await until(() => done.size === 600, 20_000);
    await q.drain();
    expect(await q.stats()).toMatchObject({ pending: 0, active: 0, retrying: 0, dead: 0 });
    // The LISTEN connection is back: a task enqueued by another runtime wakes this one though it polls rarely.
    const other = runtime(schema);
    const oq = other.queue('restart2');
    const woke: unknown[] = [];
    const rt2 = runtime(schema, { applicationName: app });
    rt2.queue('restart2', { pollMs: 60_000, handler: async (t) => void woke.push(t.payload) });
    await Promise.all([other.start(), rt2.start()]);
    await sleep(200);
    await terminate(app);
    await sleep(500); // reconnect backoff
    await oq.enqueue('after');
    await until(() => woke.length === 1, 5000);
  });

  it('enqueue with { tx }: the task commits with the caller’s transaction or vanishes with its rollback', async () => {
    const schema = fresh();
    const rt = runtime(schema);
    const ran: unknown[] = [];
    const q = rt.queue('outbox', { pollMs: 100, handler: async (t) => void ran.push(t.payload) });
    await rt.start();
    await withClient(async (c) => {
      await c.query(`CREATE TABLE "${schema}".profiles (id int PRIMARY KEY, name text)`);
      // Commit: the row and the task together.
      await c.query('BEGIN');
      await c.query(`INSERT INTO "${schema}".profiles VALUES (1, 'ada')`);
      const r = await q.enqueue({ profile: 1 }, { tx: c, key: 'p1' });
      expect(r.deduplicated).toBe(false);
      await sleep(250);
      expect(ran).toEqual([]); // not visible before the commit
      await c.query('COMMIT');
      await until(() => ran.length === 1);
      expect(ran).toEqual([{ profile: 1 }]);
      // Rollback: neither the row nor the task.
      await c.query('BEGIN');
      await c.query(`INSERT INTO "${schema}".profiles VALUES (2, 'bob')`);
      await q.enqueue({ profile: 2 }, { tx: c });
      await c.query('ROLLBACK');
      const rows = await c.query(`SELECT count(*)::int AS n FROM "${schema}".profiles`);
      expect(rows.rows[0].n).toBe(1);
    });
    await sleep(300);
    await q.drain();
    expect(ran).toEqual([{ profile: 1 }]);
    expect(await q.stats()).toMatchObject({ pending: 0, succeeded: 1 });
  });

  it('enqueue with { tx } refuses a store without transactions and a tx that is not a client', async () => {
    const mem = createRuntime({ store: memoryStore() });
    const q = mem.queue('m');
    await mem.start();
    const err = await q.enqueue(1, { tx: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(KeelError);
    expect(err.code).toBe('INVALID_OPTIONS');
    expect(err.message).toContain("'tx'");
    await mem.stop();
    const rt = runtime(fresh());
    const pq = rt.queue('p');
    await rt.start();
    const bad = await pq.enqueue(1, { tx: 42 }).catch((e) => e);
    expect(bad.code).toBe('INVALID_OPTIONS');
    expect(bad.message).toContain("'tx'");
  });
});

describe('lease renewal that keeps failing (a lost connection)', () => {
  it('aborts the attempt before its lease can run out, so no second process runs it at the same time', async () => {
    const { TestClock, settle } = await import('../../src/testing/index.js');
    const inner = memoryStore();
    const store = { ...inner, renew: async () => Promise.reject(new KeelError('STORE_UNAVAILABLE', 'renew (test)')) };
    const clock = new TestClock();
    const rt = createRuntime({ store, clock, onError: () => {} });
    let reason: unknown;
    const q = rt.queue('r', {
      leaseMs: 300,
      handler: (t) =>
        new Promise<void>((_, reject) =>
          t.signal.addEventListener('abort', () => {
            reason = t.signal.reason;
            reject(t.signal.reason);
          }),
        ),
    });
    await rt.start();
    await q.enqueue('x');
    await settle();
    await clock.advance(100); // first renewal fails; the lease still has 200 ms
    expect(reason).toBeUndefined();
    await clock.advance(100); // second fails; the lease would end before a third try
    expect((reason as { code?: string } | undefined)?.code).toBe('LEASE_LOST');
    await rt.stop();
  });
});
