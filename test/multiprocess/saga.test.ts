import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRuntime, postgresStore, type Runtime } from '../../src/index.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';
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
});
