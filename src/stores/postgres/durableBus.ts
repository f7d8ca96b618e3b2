import type pg from 'pg';
import { durableTasks } from '../durableFanOut.js';
import {
  type DurableBus,
  type DurableEvent,
  type DurableSubscriptionRecord,
  durableQueueName,
  type TransactionalDurableBus,
  type WatchedDurableBus,
} from '../store.js';
import type { Listener } from './listen.js';
import type { EnqueueOn, Queryable } from './tasks.js';

/**
 * How often `watchDurables` calls back while its LISTEN connection is not
 * listening, when the caller names no interval: the bus's default `refreshMs`.
 */
export const DURABLE_POLL_MS = 1_000;

/** What the durable bus needs of the Postgres store. */
export interface DurableBusParts {
  /** The pool (throws while the store is closed). */
  db: () => Queryable;
  /** A pooled client for a transaction of its own. */
  connect: () => Promise<pg.PoolClient>;
  /** The quoted schema. */
  schema: string;
  /** Enqueues on a given client: inside the transaction that records the events. */
  enqueueOn: EnqueueOn;
  /** The store's LISTEN connection; undefined while the store is closed (a connection opened then would outlive it). */
  listen: () => Pick<Listener, 'listen'> | undefined;
  /** The channel on which a save or delete of a subscription is announced (the name as payload). */
  channel: string;
}

interface SubRow {
  name: string;
  pattern: string;
  created_at: number | string;
  group_by: string | null;
}

/**
 * Durable bus subscriptions and the event log on Postgres. Recording takes the
 * subscriptions table in SHARE mode and a new subscription takes it in ROW
 * EXCLUSIVE mode (its INSERT), so they serialise: an event committed before a
 * subscription is in the log it replays (`from: 'earliest'`), one committed
 * after it read the subscription. Recorders share the lock and never wait on each other.
 *
 * A save that changes something and a delete announce the name on
 * `p.channel` when they commit, so every runtime on the schema re-reads its
 * list at once (`watchDurables`) instead of after its next poll.
 */
export function postgresDurableBus(p: DurableBusParts): DurableBus & TransactionalDurableBus & WatchedDurableBus {
  const subs = `${p.schema}.durable_subscriptions`;
  const events = `${p.schema}.bus_events`;

  /** Logs `list` and enqueues it for every matching subscription, on `on` inside an open transaction. */
  const recordOn = async (on: Queryable, list: readonly DurableEvent[], now: number): Promise<number> => {
    if (list.length === 0) return 0;
    await on.query({ text: `LOCK TABLE ${subs} IN SHARE MODE` });
    await on.query({
      text: `INSERT INTO ${events} (topic, time, envelope) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])`,
      values: [list.map((e) => e.topic), list.map((e) => e.time), list.map((e) => e.envelope)],
    });
    const { rows } = await on.query({ text: `SELECT name, pattern, created_at, group_by FROM ${subs}` });
    return fanOut(on, rows as SubRow[], list, now);
  };

  const fanOut = async (
    on: Queryable,
    rows: readonly SubRow[],
    list: readonly DurableEvent[],
    now: number,
  ): Promise<number> => {
    let n = 0;
    for (const sub of rows) {
      const tasks = durableTasks({ pattern: sub.pattern, groupBy: sub.group_by ?? undefined }, list, now);
      if (tasks.length === 0) continue;
      await p.enqueueOn(on, durableQueueName(sub.name), tasks, now);
      n += tasks.length;
    }
    return n;
  };

  /** Runs `fn` in a transaction of its own. */
  const inTransaction = async <T>(fn: (on: Queryable) => Promise<T>): Promise<T> => {
    const client = await p.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client as unknown as Queryable);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  };

  return {
    saveDurable(name, pattern, now, replaySince, groupBy) {
      const by = groupBy ?? null;
      return inTransaction(async (on) => {
        const inserted = await on.query({
          text: `INSERT INTO ${subs} (name, pattern, created_at, group_by) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING RETURNING name`,
          values: [name, pattern, now, by],
        });
        if (inserted.rowCount === 0) {
          // Only a new pattern or grouping is news: a runtime re-saving its subscriptions at start wakes nobody.
          await on.query({
            text: `WITH moved AS (UPDATE ${subs} SET pattern = $2, group_by = $3
                     WHERE name = $1 AND (pattern <> $2 OR group_by IS DISTINCT FROM $3) RETURNING name)
                   SELECT pg_notify($4, name) FROM moved`,
            values: [name, pattern, by, p.channel],
          });
          return false;
        }
        await on.query({ text: 'SELECT pg_notify($1, $2)', values: [p.channel, name] });
        if (replaySince !== undefined) {
          const logged = await on.query({
            text: `SELECT topic, time, envelope FROM ${events} WHERE time >= $1 ORDER BY seq`,
            values: [replaySince],
          });
          await fanOut(on, [{ name, pattern, created_at: now, group_by: by }], logged.rows as DurableEvent[], now);
        }
        return true;
      });
    },

    async deleteDurable(name) {
      const r = await p.db().query({
        text: `WITH gone AS (DELETE FROM ${subs} WHERE name = $1 RETURNING name) SELECT pg_notify($2, name) FROM gone`,
        values: [name, p.channel],
      });
      return (r.rowCount ?? 0) > 0;
    },

    /**
     * Calls `onChange` when any runtime on the schema saves or deletes a
     * subscription, and once each time the LISTEN connection listens again
     * (what was announced meanwhile is unknown). While it does not listen
     * (not yet connected, dropped, reconnecting) it calls `onChange` every
     * `pollMs` instead: the poll is the fallback, never the only path.
     */
    watchDurables(onChange, pollMs = DURABLE_POLL_MS) {
      const listener = p.listen();
      if (!listener) return () => {};
      let poll: NodeJS.Timeout | undefined;
      const polling = (on: boolean) => {
        if (on && !poll) {
          poll = setInterval(onChange, pollMs);
          // Only a hint for the runtime: it never keeps the process alive.
          poll.unref();
        } else if (!on && poll) {
          clearInterval(poll);
          poll = undefined;
        }
      };
      polling(true);
      const unlisten = listener.listen(p.channel, (payload) => {
        // null: the connection dropped; undefined: it listens again; a string: a subscription's name.
        polling(payload === null);
        if (payload !== null) onChange();
      });
      return () => {
        polling(false);
        unlisten();
      };
    },

    async listDurables(): Promise<DurableSubscriptionRecord[]> {
      const { rows } = await p
        .db()
        .query({ text: `SELECT name, pattern, created_at, group_by FROM ${subs} ORDER BY name` });
      return (rows as SubRow[]).map((r) => ({
        name: r.name,
        pattern: r.pattern,
        createdAt: Number(r.created_at),
        ...(r.group_by !== null && { groupBy: r.group_by }),
      }));
    },

    recordEvents(list, now) {
      if (list.length === 0) return Promise.resolve(0);
      return inTransaction((on) => recordOn(on, list, now));
    },

    recordEventsWith(tx, list, now) {
      return recordOn(tx as Queryable, list, now);
    },

    async pruneEvents(before) {
      const r = await p.db().query({ text: `DELETE FROM ${events} WHERE time < $1`, values: [before] });
      return r.rowCount ?? 0;
    },
  };
}
