import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, postgresStore, type Runtime } from '../../src/index.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';
import { sleep, until } from '../fixtures/wait.js';

const fresh = freshSchemas('bus');

describe.skipIf(!pgAvailable)('bus across runtimes (postgresStore bus option)', () => {
  const runtimes: Runtime[] = [];
  const runtime = (schema: string, bus: boolean | string[]) => {
    const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema, bus, poolSize: 3 }) });
    runtimes.push(rt);
    return rt;
  };
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((rt) => rt.stop()));
  });

  it('events reach subscribers in other runtimes, in publish order per publisher, with payloads over 8000 bytes', async () => {
    const schema = fresh();
    const [a, b, c] = [runtime(schema, true), runtime(schema, true), runtime(schema, true)];
    const atB: string[] = [];
    const atC: string[] = [];
    const local: string[] = [];
    let big: unknown;
    b.bus.subscribe('order.>', (p: { from: string; n: number }, e) => atB.push(`${e.type}:${p.from}${p.n}`));
    c.bus.subscribe('order.placed', (p: { from: string; n: number }) => atC.push(`${p.from}${p.n}`));
    c.bus.subscribe('blob', (p) => void (big = p));
    a.bus.subscribe('order.placed', (p: { from: string; n: number }) => local.push(`${p.from}${p.n}`));
    await Promise.all([a.start(), b.start(), c.start()]);
    for (let n = 0; n < 50; n++) {
      a.bus.publish('order.placed', { from: 'a', n });
      c.bus.publish('order.placed', { from: 'c', n });
      if (n % 10 === 0) await sleep(1);
    }
    a.bus.publish('order.shipped', { from: 'a', n: 99 });
    const blob = { text: 'x'.repeat(20_000) };
    a.bus.publish('blob', blob);
    await until(() => atB.length === 101 && atC.length === 100 && big !== undefined, 15_000);
    const fromA = atB.filter((x) => x.includes(':a'));
    expect(fromA).toEqual([...Array.from({ length: 50 }, (_, n) => `order.placed:a${n}`), 'order.shipped:a99']);
    expect(atB.filter((x) => x.includes(':c'))).toEqual(Array.from({ length: 50 }, (_, n) => `order.placed:c${n}`));
    // C hears its own events once (locally) and A's once (through the bridge): no echoes.
    expect(atC.filter((x) => x.startsWith('c'))).toEqual(Array.from({ length: 50 }, (_, n) => `c${n}`));
    expect(atC.filter((x) => x.startsWith('a'))).toEqual(Array.from({ length: 50 }, (_, n) => `a${n}`));
    expect(big).toEqual(blob);
    await sleep(200);
    expect(local.filter((x) => x.startsWith('a'))).toHaveLength(50);
    expect(local.filter((x) => x.startsWith('c'))).toHaveLength(50);
    expect(atB).toHaveLength(101);
  });

  it('a dropped LISTEN connection loses nothing: what was published meanwhile is read back, in order', async () => {
    const schema = fresh();
    const app = `keel_busdrop_${process.pid}_${Date.now()}`;
    const a = runtime(schema, true);
    const c = createRuntime({
      store: postgresStore({ connectionString: PG_URL, schema, bus: true, poolSize: 3, applicationName: app }),
    });
    runtimes.push(c);
    const got: number[] = [];
    c.bus.subscribe('tick', (n: number) => void got.push(n));
    await Promise.all([a.start(), c.start()]);
    for (let n = 0; n < 20; n++) a.bus.publish('tick', n);
    await until(() => got.length === 20, 15_000);
    const killed = await withClient(
      async (cl) =>
        (
          await cl.query(
            `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
             WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
            [app],
          )
        ).rows[0].n as number,
    );
    expect(killed).toBe(1);
    for (let n = 20; n < 40; n++) a.bus.publish('tick', n); // while C does not listen
    await sleep(50);
    for (let n = 40; n < 60; n++) a.bus.publish('tick', n);
    await until(() => got.length === 60, 15_000);
    expect(got).toEqual(Array.from({ length: 60 }, (_, n) => n));
  });

  it('only the configured topics cross; without the option nothing does', async () => {
    const schema = fresh();
    const a = runtime(schema, ['user.*']);
    const b = runtime(schema, ['user.*']);
    const plain = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
    runtimes.push(plain);
    const atB: string[] = [];
    const atPlain: string[] = [];
    b.bus.subscribe('>', (_p, e) => atB.push(e.type));
    plain.bus.subscribe('>', (_p, e) => atPlain.push(e.type));
    await Promise.all([a.start(), b.start(), plain.start()]);
    a.bus.publish('user.updated', 1);
    a.bus.publish('order.placed', 2);
    await until(() => atB.includes('user.updated'), 15_000);
    await sleep(200);
    expect(atB).toEqual(['user.updated']);
    expect(atPlain).toEqual([]);
  });
});
