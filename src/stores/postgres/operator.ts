import type { DeadTaskRemoval, QueuePauses } from '../store.js';
import type { Listener } from './listen.js';
import { isTaskId } from './taskSql.js';
import type { Queryable } from './tasks.js';

/** What the operator actions need of the store: its pool, its LISTEN connection (when open), its schema. */
export interface OperatorDeps {
  db: () => Queryable;
  /** The store's listener, or undefined while closed (a LISTEN opened then would outlive the store). */
  listen: () => Listener | undefined;
  /** The quoted schema name. */
  schema: string;
  /** The NOTIFY channel that tells other processes a pause flag changed. */
  channel: string;
}

/**
 * Operator actions of the Postgres store (issue #19): deleting dead tasks and
 * the fleet-wide pause flag of a queue (`queue_pauses`, migration 7). A
 * change of flag is NOTIFYed so every process hears of it at once; they poll too.
 */
export function postgresOperator(d: OperatorDeps): DeadTaskRemoval & QueuePauses {
  const s = d.schema;
  return {
    async deleteDead(queue, ids) {
      const wanted = ids.filter(isTaskId).map(Number);
      if (wanted.length === 0) return [];
      const { rows } = await d.db().query({
        text: `DELETE FROM ${s}.tasks WHERE queue = $1 AND state = 'dead' AND id = ANY($2::bigint[]) RETURNING id`,
        values: [queue, wanted],
      });
      return (rows as { id: number }[]).map((r) => String(r.id)).sort((a, b) => Number(a) - Number(b));
    },

    async setQueuePaused(queue, paused, now) {
      const text = paused
        ? `WITH w AS (INSERT INTO ${s}.queue_pauses (queue, paused_at) VALUES ($1, $2) ON CONFLICT (queue) DO NOTHING)
           SELECT pg_notify($3, $1)`
        : `WITH w AS (DELETE FROM ${s}.queue_pauses WHERE queue = $1) SELECT pg_notify($3, $1), $2::bigint`;
      await d.db().query({ text, values: [queue, now, d.channel] });
    },

    async pausedQueues() {
      const { rows } = await d.db().query({ text: `SELECT queue FROM ${s}.queue_pauses ORDER BY queue` });
      return (rows as { queue: string }[]).map((r) => r.queue);
    },

    watchPauses(onChange) {
      // Any news, a lost connection (null) or a resumed one (undefined): the flags may have changed, so read them.
      return d.listen()?.listen(d.channel, () => onChange()) ?? (() => {});
    },
  };
}
