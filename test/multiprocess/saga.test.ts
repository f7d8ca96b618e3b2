import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRuntime, postgresStore, type Runtime } from '../../src/index.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema, withClient } from '../fixtures/pg.js';
import { sleep, until } from '../fixtures/wait.js';

const LEASE_MS = 1500;

describe.skipIf(!pgAvailable)('sagas owned by one runtime at a time (Postgres)', () => {
  const schemas: string[] = [];
  const runtimes: Runtime[] = [];
  const fresh = () => {
    const s = uniqueSchema('saga');
    schemas.push(s);
    return s;
  };
  /** A runtime with saga `transfer`; its steps log `<who>:<step>`; `hold` makes step b wait for `release`. */
  const runtime = (schema: string, who: string, log: string[], hold?: Promise<void>, leaseMs = LEASE_MS) => {
    const rt = createRuntime({
      store: postgresStore({ connectionString: PG_URL, schema, sagaLeaseMs: leaseMs }),
      onError: () => {},
    });
    runtimes.push(rt);
    const step = (name: string, run: () => Promise<unknown>) => ({
      name,
      run: async () => {
        log.push(`${who}:${name}`);
        return run();
      },
    });
    const saga = rt.saga('transfer', {
      shutdownGraceMs: 100,
      steps: [
        step('a', async () => 'a-done'),
        step('b', async () => {
          await hold;
          return 'b-done';
        }),
        step('c', async () => 'c-done'),
      ],
    });
    return { rt, saga };
  };
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((rt) => rt.stop().catch(() => {})));
  });
  afterAll(async () => {
    for (const s of schemas) await dropSchema(s);
  });

  it('a saga SIGKILLed while it waits for a signal is adopted by a live runtime, which takes the signal', {
    timeout: 30_000,
  }, async () => {
    const schema = fresh();
    const log: string[] = [];
    const rt = createRuntime({
      store: postgresStore({ connectionString: PG_URL, schema, sagaLeaseMs: LEASE_MS }),
      onError: () => {},
    });
    runtimes.push(rt);
    const transfer = rt.saga('transfer', {
      steps: [
        { name: 'a', run: async () => log.push('B:a') && 'a-done' },
        { name: 'b', waitFor: 'go' },
        { name: 'c', run: async () => log.push('B:c') && 'c-done' },
      ],
    });
    await rt.start();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, '../fixtures/sagaWorker.ts'),
        PG_URL,
        schema,
        String(LEASE_MS),
        'wait',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.on('exit', (_c, signal) => resolve(signal)));
    const stored = () =>
      withClient(async (c) => {
        const { rows } = await c.query(`SELECT state FROM "${schema}".sagas WHERE saga = 'transfer' AND id = 's1'`);
        return (rows[0] as { state: string } | undefined)?.state;
      });
    await until(async () => (await stored()) === '{"running":"b"}', 20_000, 'the child to wait in step b');
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Sent while nobody runs it: kept until the live runtime adopts the saga (after the dead owner's lease).
    await transfer.signal('s1', 'go', { approved: true });
    await until(() => log.includes('B:c'), 10_000, 'the live runtime to finish the saga');
    const r = await transfer.execute(null, { id: 's1' });
    expect(r).toMatchObject({ status: 'completed', results: { a: 'a-done', b: { approved: true }, c: 'c-done' } });
    // Step a ran in the killed process only; the wait was resumed, not the saga.
    expect(log).toEqual(['B:c']);
  });

  it('a saga whose runtime was SIGKILLed is resumed by a live runtime, never while its owner lived', {
    timeout: 30_000,
  }, async () => {
    const schema = fresh();
    const log: string[] = [];
    const b = runtime(schema, 'B', log);
    await b.rt.start(); // B runs (and checks for orphans) before, during and after A's life
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '../fixtures/sagaWorker.ts'), PG_URL, schema, String(LEASE_MS)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.on('exit', (_c, signal) => resolve(signal)));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('RUN b'), 20_000, 'the child to reach step b');
    // A lives on for several leases: its renewals keep B away.
    await sleep(LEASE_MS * 3);
    expect(log).toEqual([]);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    await until(() => log.includes('B:c'), 10_000, 'B to finish the saga');
    // The step in flight runs again; the finished one does not.
    expect(log).toEqual(['B:b', 'B:c']);
    const r = await b.saga.execute({ amount: 5 }, { id: 's1' });
    expect(r.status).toBe('completed');
    expect(r.results).toEqual({ a: 'a-done', b: 'b-done', c: 'c-done' });
    expect(out.match(/RUN a/g)).toHaveLength(1);
  });

  it('execute of a saga another live runtime runs waits for its result instead of running it twice', {
    timeout: 20_000,
  }, async () => {
    const schema = fresh();
    const log: string[] = [];
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const a = runtime(schema, 'A', log, hold);
    const b = runtime(schema, 'B', log);
    await Promise.all([a.rt.start(), b.rt.start()]);
    const fromA = a.saga.execute({ n: 1 }, { id: 'x' });
    await until(() => log.includes('A:b'), 5000, 'A at step b');
    let joined = false;
    const fromB = b.saga.execute({ n: 1 }, { id: 'x' }).then((r) => {
      joined = true;
      return r;
    });
    await sleep(LEASE_MS * 2);
    expect(joined).toBe(false);
    release();
    const [ra, rb] = await Promise.all([fromA, fromB]);
    expect(ra.status).toBe('completed');
    expect(rb).toEqual(ra);
    expect(log).toEqual(['A:a', 'A:b', 'A:c']);
  });

  it('a graceful stop hands the saga over at once (no lease wait)', { timeout: 20_000 }, async () => {
    const schema = fresh();
    const log: string[] = [];
    // A lease far longer than the test: only the release on stop lets B in this soon.
    const a = runtime(schema, 'A', log, new Promise(() => {}), 60_000);
    await a.rt.start();
    void a.saga.execute({ n: 2 }, { id: 'y' }).catch(() => {});
    await until(() => log.includes('A:b'), 5000, 'A at step b');
    await a.rt.stop();
    const started = Date.now();
    const b = runtime(schema, 'B', log, undefined, 60_000);
    await b.rt.start();
    await until(() => log.includes('B:c'), 10_000, 'B to finish');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(log).toEqual(['A:a', 'A:b', 'B:b', 'B:c']);
  });

  it('two runtimes executing the same saga id at once: one runs it, the other joins and gets the real result', {
    timeout: 30_000,
  }, async () => {
    const schema = fresh();
    const log: string[] = [];
    // A short lease, so a loser that waits polls often.
    const a = runtime(schema, 'A', log, undefined, 600);
    const b = runtime(schema, 'B', log, undefined, 600);
    const events: string[] = [];
    for (const [who, r] of [
      ['A', a.rt],
      ['B', b.rt],
    ] as const) {
      r.bus.subscribe('saga.transfer.>', (_p, e) => {
        events.push(`${who}:${e.type.slice('saga.transfer.'.length)}`);
      });
    }
    await Promise.all([a.rt.start(), b.rt.start()]);
    // Many ids at once, so the races land at every point: before either saved, mid-saga, just after it ended.
    const ids = Array.from({ length: 20 }, (_, i) => `same-${i}`);
    const results = await Promise.all(
      ids.flatMap((id) => [a.saga.execute({ n: 1 }, { id }), b.saga.execute({ n: 1 }, { id })]),
    );
    for (const r of results) {
      expect(r).toMatchObject({ status: 'completed', results: { a: 'a-done', b: 'b-done', c: 'c-done' } });
    }
    for (let i = 0; i < ids.length; i++) expect(results[2 * i]).toEqual(results[2 * i + 1]);
    // Each saga ran once: three steps each, whoever ran them.
    expect(log).toHaveLength(3 * ids.length);
    expect(events.filter((e) => /compensat|failed/.test(e))).toEqual([]);
    expect(events.filter((e) => e.endsWith(':started'))).toHaveLength(ids.length);
    expect(events.filter((e) => e.endsWith(':completed'))).toHaveLength(ids.length);
  });

  it("a renewal that runs while a saga's first checkpoint is on its way does not make its runtime give it up", {
    timeout: 20_000,
  }, async () => {
    const schema = fresh();
    const store = postgresStore({ connectionString: PG_URL, schema, sagaLeaseMs: 600 });
    // The first checkpoint of 'x' is held until a renewal has run; that renewal answers only once the checkpoint
    // landed, so the runtime's next read finds the saga stored, running, and its own.
    let releaseSave!: () => void;
    const saveGate = new Promise<void>((r) => (releaseSave = r));
    let saveLanded!: () => void;
    const landed = new Promise<void>((r) => (saveLanded = r));
    let held = false;
    let renewed = false;
    const save = store.saveSaga.bind(store);
    store.saveSaga = async (record) => {
      if (record.id !== 'x' || held) return save(record);
      held = true;
      await saveGate;
      await save(record);
      saveLanded();
    };
    const renew = store.renewSagas.bind(store);
    store.renewSagas = async (saga, ids, now) => {
      const lost = await renew(saga, ids, now);
      if (held && !renewed) {
        renewed = true;
        releaseSave();
        await landed;
      }
      return lost;
    };
    const adoptedIds: (string | undefined)[] = [];
    const adopt = store.adoptSagas.bind(store);
    store.adoptSagas = (saga, now, id, versions) => {
      adoptedIds.push(id);
      return adopt(saga, now, id, versions);
    };
    const rt = createRuntime({ store, onError: () => {} });
    runtimes.push(rt);
    const runs: string[] = [];
    const saga = rt.saga('transfer', {
      steps: ['a', 'b'].map((name) => ({ name, run: async () => void runs.push(name) })),
    });
    await rt.start();
    const result = await saga.execute({}, { id: 'x' });
    expect(result.status).toBe('completed');
    expect(renewed).toBe(true);
    expect(runs).toEqual(['a', 'b']);
    // It never took itself for another runtime's saga (which waits on adoptSagas for its own lease to lapse).
    expect(adoptedIds).not.toContain('x');
  });

  it('a runtime that read the saga as new just before another finished it joins the finished saga, never reruns it', {
    timeout: 20_000,
  }, async () => {
    const schema = fresh();
    const log: string[] = [];
    const a = runtime(schema, 'A', log);
    await a.rt.start();
    const first = await a.saga.execute({ n: 1 }, { id: 'late' });
    expect(first.status).toBe('completed');
    // B's first read of the saga happened before A saved anything (the race, made certain).
    const store = postgresStore({ connectionString: PG_URL, schema, sagaLeaseMs: LEASE_MS });
    let stale = true;
    const staleStore = {
      ...store,
      loadSaga: async (saga: string, id: string) => {
        if (!stale) return store.loadSaga(saga, id);
        stale = false;
        return undefined;
      },
    };
    const b = createRuntime({ store: staleStore, onError: () => {} });
    runtimes.push(b);
    const events: string[] = [];
    b.bus.subscribe('saga.transfer.>', (_p, e) => {
      events.push(e.type);
    });
    const saga = b.saga('transfer', {
      steps: ['a', 'b', 'c'].map((name) => ({ name, run: () => void log.push(`B:${name}`) })),
    });
    await b.start();
    expect(await saga.execute({ n: 1 }, { id: 'late' })).toEqual(first);
    expect(log).toEqual(['A:a', 'A:b', 'A:c']);
    expect(events).toEqual([]);
  });

  it('a dropped connection while saving progress pauses the saga; it goes on once the database answers', {
    timeout: 30_000,
  }, async () => {
    const schema = fresh();
    const app = `keel-saga-drop-${process.pid}`;
    const reports: unknown[] = [];
    const rt = createRuntime({
      store: postgresStore({ connectionString: PG_URL, schema, applicationName: app }),
      onError: (e) => void reports.push(e),
    });
    runtimes.push(rt);
    const events: string[] = [];
    rt.bus.subscribe('saga.drop.>', (_p, e) => {
      events.push(e.type.slice('saga.drop.'.length));
    });
    const log: string[] = [];
    let locked!: () => void;
    const lockTaken = new Promise<void>((r) => (locked = r));
    let unlock!: () => void;
    const unlocked = new Promise<void>((r) => (unlock = r));
    const saga = rt.saga('drop', {
      steps: [
        {
          name: 'a',
          run: async () => {
            log.push('a');
            // Block the next checkpoint on a lock, so the connection can be killed while it waits.
            locked();
            await new Promise((r) => setTimeout(r, 50));
            return 'a-done';
          },
          compensate: () => void log.push('undo a'),
        },
        { name: 'b', run: () => void log.push('b') },
      ],
    });
    await rt.start();
    const locker = withClient(async (c) => {
      await lockTaken;
      await c.query('BEGIN');
      await c.query(`LOCK TABLE "${schema}".sagas IN ACCESS EXCLUSIVE MODE`);
      for (let killed = 0; killed === 0; ) {
        await sleep(20);
        const res = await c.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [app],
        );
        killed = res.rowCount ?? 0;
      }
      await unlocked;
      await c.query('ROLLBACK');
    });
    const done = saga.execute({}, { id: 'd1' });
    await until(() => reports.length > 0, 10_000, 'the dropped connection to be reported');
    expect((reports[0] as { code?: string }).code).toBe('STORE_UNAVAILABLE');
    expect(log).toEqual(['a']);
    unlock();
    await locker;
    const r = await done;
    expect(r).toMatchObject({ status: 'completed', results: { a: 'a-done' } });
    expect(log).toEqual(['a', 'b']);
    expect(events).toEqual(['started', 'stepCompleted', 'stepCompleted', 'completed']);
  });
});
