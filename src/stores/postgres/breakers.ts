import { breakerNews, type FleetBreakerRow, type FleetBreakers } from '../store.js';
import type { Listener } from './listen.js';

/** A pooled connection, for the one transaction an update needs. */
interface PooledClient {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
  release(error?: Error | boolean): void;
}

/** What the breaker half needs of the Postgres store. */
export interface PostgresBreakersOptions {
  /** A connection from the pool (throws when the store is not open). */
  connect(): Promise<PooledClient>;
  /** The store's LISTEN connection. */
  listen(): Listener;
  /** The quoted schema. */
  schema: string;
  /** The NOTIFY channel of breaker changes. */
  channel: string;
}

/**
 * Fleet breakers on Postgres (issue #18): one row per breaker in
 * `<schema>.breakers`, its state as JSON. An update locks the row
 * (`SELECT ... FOR UPDATE`, inserting it first when missing), applies the
 * caller's pure change and writes it back in one transaction, so concurrent
 * processes apply their changes one after another; a change that moves the
 * period NOTIFYs the breaker's name on commit.
 */
export function postgresBreakers(o: PostgresBreakersOptions): FleetBreakers {
  const t = `${o.schema}.breakers`;
  return {
    async updateBreaker(name, change) {
      const client = await o.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        try {
          await client.query(`INSERT INTO ${t} (name, data) VALUES ($1, NULL) ON CONFLICT (name) DO NOTHING`, [name]);
          const { rows } = await client.query(`SELECT data FROM ${t} WHERE name = $1 FOR UPDATE`, [name]);
          const before = (rows[0]?.data ?? undefined) as FleetBreakerRow | undefined;
          const after = change(before);
          if (after === undefined) {
            await client.query('COMMIT');
            return before;
          }
          await client.query(`UPDATE ${t} SET data = $2 WHERE name = $1`, [name, JSON.stringify(after)]);
          if (breakerNews(before, after)) await client.query('SELECT pg_notify($1, $2)', [o.channel, name]);
          await client.query('COMMIT');
          return after;
        } catch (error) {
          await client.query('ROLLBACK').catch((e: Error) => {
            broken = e;
          });
          throw error;
        }
      } finally {
        // A connection whose ROLLBACK failed is not given back to the pool.
        client.release(broken ?? false);
      }
    },

    async readBreaker(name) {
      const client = await o.connect();
      try {
        const { rows } = await client.query(`SELECT data FROM ${t} WHERE name = $1`, [name]);
        return (rows[0]?.data ?? undefined) as FleetBreakerRow | undefined;
      } finally {
        client.release();
      }
    },

    watchBreakers(onChange) {
      return o.listen().listen(o.channel, (payload) => onChange(payload));
    },
  };
}
