/**
 * Postgres: `publish(topic, payload, { tx })` records the event for the durable
 * subscriptions inside the caller's transaction (the outbox pattern), and an
 * event the bus bridge carries to another runtime is not recorded twice.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime, postgresStore } from '../../src/index.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { sleep, until } from '../fixtures/wait.js';

describe.skipIf(!pgAvailable)('durable publish inside the caller transaction (postgres)', () => {
  const schemas = freshSchemas('outbox');
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  afterAll(() => pool.end());

  it('records nothing when the transaction rolls back and delivers once it commits', async () => {
    const schema = schemas();
    const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema, poolSize: 3 }) });
    const durable: number[] = [];
    const plain: number[] = [];
    rt.bus.subscribe('profile.>', (p: { v: number }) => void durable.push(p.v), { durable: 'outbox' });
    rt.bus.subscribe('profile.>', (p: { v: number }) => void plain.push(p.v));
    await rt.start();
    try {
      await pool.query(`CREATE TABLE "${schema}".profiles (id int PRIMARY KEY, v int)`);
      const write = async (v: number, commit: boolean) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query(
            `INSERT INTO "${schema}".profiles VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET v = excluded.v`,
            [v],
          );
          const n = await rt.bus.publish('profile.updated', { v }, { tx: client });
          expect(n).toBe(1); // one durable subscription matched
          await client.query(commit ? 'COMMIT' : 'ROLLBACK');
        } finally {
          client.release();
        }
      };
      await write(1, false);
      await sleep(100);
      expect(await rt.queue('bus:outbox').stats()).toMatchObject({ pending: 0, active: 0, succeeded: 0 });
      expect(durable).toEqual([]);
      await write(2, true);
      await until(() => durable.length === 1, 5000, 'the committed event');
      await rt.queue('bus:outbox').drain();
      expect(durable).toEqual([2]);
      // Plain subscribers never see a transactional publish (it might still roll back).
      expect(plain).toEqual([]);
      const { rows } = await pool.query(`SELECT v FROM "${schema}".profiles`);
      expect(rows).toEqual([{ v: 2 }]);
    } finally {
      await rt.stop();
    }
  });

  it('records an event once even when the bus bridge carries it to another runtime', async () => {
    const schema = schemas();
    const store = () => postgresStore({ connectionString: PG_URL, schema, poolSize: 3, bus: ['order.>'] });
    const a = createRuntime({ store: store() });
    const b = createRuntime({ store: store() });
    const got: number[] = [];
    const bridged: number[] = [];
    b.bus.subscribe('order.>', (p: { n: number }) => void got.push(p.n), { durable: 'orders' });
    b.bus.subscribe('order.>', (p: { n: number }) => void bridged.push(p.n));
    await b.start();
    await a.start();
    try {
      a.bus.publish('order.placed', { n: 1 });
      await a.bus.flush();
      await until(() => bridged.length === 1, 5000, 'the bridged event');
      await b.bus.flush();
      await b.queue('bus:orders').drain();
      await sleep(50);
      expect(got).toEqual([1]);
      expect(await b.queue('bus:orders').stats()).toMatchObject({ pending: 0, succeeded: 1 });
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
