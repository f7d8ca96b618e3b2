import type pg from 'pg';
import type { FireResult, ScheduleRow, Schedules } from '../store.js';
import type { EnqueueOn, Queryable } from './tasks.js';

/** What the schedules need of the Postgres store. */
export interface PostgresSchedulesOptions {
  /** A client of the store's pool (throws while the store is closed). */
  connect(): Promise<pg.PoolClient>;
  /** The pool, for single statements. */
  db(): Queryable;
  /** The store's enqueue on a given client: inside `fireSchedule`'s transaction. */
  enqueueOn: EnqueueOn;
  /** The quoted schema. */
  schema: string;
}

interface Row {
  name: string;
  definition: string;
  last_slot: number | string;
}

// Number(): a plain client may hand bigint over as text.
const toRow = (r: Row): ScheduleRow => ({ name: r.name, definition: r.definition, lastSlot: Number(r.last_slot) });

/**
 * Schedules of the Postgres store. `fireSchedule` moves `last_slot` with a
 * compare-and-set and enqueues the slot's tasks through the store's own
 * enqueue on the same client, in one transaction: of several processes that
 * wake for a slot, exactly one commits it.
 */
export function postgresSchedules(o: PostgresSchedulesOptions): Schedules {
  const t = `${o.schema}.schedules`;
  return {
    async saveSchedule(name, definition, since) {
      const { rows } = await o.db().query({
        text: `INSERT INTO ${t} AS s (name, definition, last_slot) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,
                 last_slot = CASE WHEN s.definition = excluded.definition THEN s.last_slot
                                  ELSE greatest(s.last_slot, excluded.last_slot) END
               RETURNING *`,
        values: [name, definition, since],
      });
      return toRow(rows[0] as Row);
    },
    async readSchedule(name) {
      const { rows } = await o.db().query({ text: `SELECT * FROM ${t} WHERE name = $1`, values: [name] });
      return rows[0] === undefined ? undefined : toRow(rows[0] as Row);
    },
    async listSchedules() {
      const { rows } = await o.db().query({ text: `SELECT * FROM ${t} ORDER BY name` });
      return (rows as Row[]).map(toRow);
    },
    async removeSchedule(name) {
      const { rowCount } = await o.db().query({ text: `DELETE FROM ${t} WHERE name = $1`, values: [name] });
      return (rowCount ?? 0) > 0;
    },
    async fireSchedule(name, { from, to, queue, tasks }, now): Promise<FireResult> {
      const client = await o.connect();
      let broken: Error | undefined;
      // A connection cut while checked out emits 'error' on the client (the pool listens only while it is idle);
      // the query under way rejects as well, and that is what reaches the caller.
      const onError = (e: Error) => {
        broken = e;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        try {
          const moved = await client.query(`UPDATE ${t} SET last_slot = $3 WHERE name = $1 AND last_slot = $2`, [
            name,
            from,
            to,
          ]);
          if ((moved.rowCount ?? 0) === 0) {
            const { rows } = await client.query(`SELECT 1 FROM ${t} WHERE name = $1`, [name]);
            await client.query('COMMIT');
            return { status: rows.length > 0 ? 'moved' : 'gone' };
          }
          const results =
            tasks.length === 0 ? [] : await o.enqueueOn(client as unknown as Queryable, queue, tasks, now);
          await client.query('COMMIT');
          return { status: 'fired', results };
        } catch (error) {
          await client.query('ROLLBACK').catch((e: Error) => {
            broken = e;
          });
          throw error;
        }
      } finally {
        client.off('error', onError);
        // A connection that failed (or whose ROLLBACK failed) is not given back to the pool.
        client.release(broken ?? false);
      }
    },
  };
}
