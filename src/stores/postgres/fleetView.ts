import type pg from 'pg';
import { invalidOptions, KeelError } from '../../core/errors.js';
import {
  type FleetBreaker,
  type FleetPicture,
  type FleetQueue,
  type FleetView,
  SAGA_NAMES_SHOWN,
} from '../fleetView.js';
import { type TaskRow, taskRecord } from '../sql/rows.js';
import type { FleetBreakerRow } from '../store.js';
import { describeTarget } from './store.js';

/** Options of `postgresFleetView`. */
export interface PostgresFleetViewOptions {
  connectionString: string;
  /** The schema the fleet's runtimes use (`postgresStore({ schema })`); default `keel`. */
  schema?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * The fleet view of one Postgres schema (`keel console --postgres`): plain
 * SELECTs on its own small pool, so a console never holds a lock or a lease
 * that the fleet's runtimes wait for.
 */
export function postgresFleetView(options: PostgresFleetViewOptions): FleetView {
  const schema = options.schema ?? 'keel';
  if (typeof options.connectionString !== 'string' || options.connectionString === '') {
    throw invalidOptions('postgresFleetView', 'connectionString', 'must be a non-empty postgres:// URL');
  }
  if (typeof schema !== 'string' || !IDENT.test(schema)) {
    throw invalidOptions('postgresFleetView', 'schema', `must be a plain identifier, got ${String(schema)}`);
  }
  const s = `"${schema}"`;
  const where = `schema ${schema} on ${describeTarget(options.connectionString)}`;
  let pool: Promise<pg.Pool> | undefined;
  const db = () => {
    pool ??= import('pg').then((m) => {
      const driver = ((m as { default?: typeof pg }).default ?? m) as typeof pg;
      const p = new driver.Pool({
        connectionString: options.connectionString,
        max: 2,
        application_name: 'keel console',
      });
      p.on('error', () => {});
      return p;
    });
    return pool;
  };
  const query = async (text: string, values: unknown[] = []) => {
    try {
      return (await (await db()).query(text, values)).rows as any[];
    } catch (error) {
      throw new KeelError('STORE_UNAVAILABLE', `keel console (${where}): ${(error as Error).message}`, {
        cause: error,
      });
    }
  };

  return {
    where,
    async read(now, { deadShown, sagasShown }): Promise<FleetPicture> {
      const [counts, succeeded, paused, dead, sagas, breakers, names] = await Promise.all([
        query(
          `SELECT queue,
             count(*) FILTER (WHERE state = 'pending' OR (state = 'retrying' AND run_at <= $1))::int AS pending,
             count(*) FILTER (WHERE state = 'active')::int AS active,
             count(*) FILTER (WHERE state = 'retrying' AND run_at > $1)::int AS retrying,
             count(*) FILTER (WHERE state = 'dead')::int AS dead
           FROM ${s}.tasks GROUP BY queue`,
          [now],
        ),
        query(
          `SELECT queue, sum(succeeded)::float8 AS n, sum(cancelled)::float8 AS c FROM ${s}.queue_counts GROUP BY queue`,
        ),
        query(`SELECT queue FROM ${s}.queue_pauses`),
        query(
          `SELECT * FROM (SELECT t.*, row_number() OVER (PARTITION BY queue ORDER BY id) AS rn
             FROM ${s}.tasks t WHERE state = 'dead') d WHERE rn <= $1 ORDER BY queue, id`,
          [deadShown],
        ),
        query(
          `SELECT saga, id, status, state, updated_at::float8 AS updated_at FROM ${s}.sagas
           WHERE status IN ('running', 'compensating') ORDER BY created_at, saga, id LIMIT $1`,
          [sagasShown],
        ),
        query(`SELECT name, data FROM ${s}.breakers WHERE data IS NOT NULL ORDER BY name`),
        // The distinct names by skipping through the primary key, one probe per name: not a scan of every run.
        query(
          `WITH RECURSIVE n(saga) AS (
             SELECT min(saga) FROM ${s}.sagas
             UNION ALL
             SELECT (SELECT min(saga) FROM ${s}.sagas WHERE saga > n.saga) FROM n WHERE n.saga IS NOT NULL)
           SELECT saga FROM n WHERE saga IS NOT NULL LIMIT $1`,
          [SAGA_NAMES_SHOWN],
        ),
      ]);
      const queues = new Map<string, FleetQueue>();
      const queue = (name: string) => {
        let q = queues.get(name);
        if (!q) {
          q = {
            name,
            stats: { pending: 0, active: 0, retrying: 0, succeeded: 0, dead: 0, cancelled: 0 },
            paused: false,
            dead: [],
          };
          queues.set(name, q);
        }
        return q;
      };
      for (const r of counts)
        Object.assign(queue(r.queue).stats, {
          pending: r.pending,
          active: r.active,
          retrying: r.retrying,
          dead: r.dead,
        });
      for (const r of succeeded) {
        queue(r.queue).stats.succeeded = Number(r.n);
        queue(r.queue).stats.cancelled = Number(r.c);
      }
      for (const r of paused) queue(r.queue).paused = true;
      for (const r of dead) {
        // bigint columns arrive as text on this pool (no type parsers): numbers for the record.
        const row = {
          ...r,
          id: Number(r.id),
          run_at: Number(r.run_at),
          lease_until: r.lease_until === null ? null : Number(r.lease_until),
          created_at: Number(r.created_at),
          updated_at: Number(r.updated_at),
        };
        queue(r.queue).dead.push(taskRecord(row as TaskRow, now));
      }
      return {
        queues: [...queues.values()].sort((a, b) => a.name.localeCompare(b.name)),
        sagas: sagas.map((r) => ({
          saga: r.saga,
          id: r.id,
          status: r.status,
          state: r.state,
          updatedAt: r.updated_at,
        })),
        breakers: breakers.map((r) => breakerOf(r.name, r.data as FleetBreakerRow, now)),
        sagaNames: names.map((r) => r.saga as string),
      };
    },
    async close() {
      const p = pool;
      pool = undefined;
      await (await p?.catch(() => undefined))?.end();
    },
  };
}

/** A breaker row as the console shows it: an open period that is over lets a trial through, i.e. half-open. */
function breakerOf(name: string, row: FleetBreakerRow, now: number): FleetBreaker {
  const state = row.state === 'closed' ? 'closed' : now >= row.openedAt + row.openMs ? 'halfOpen' : 'open';
  return { name, state, period: row.period, failures: row.failures };
}
