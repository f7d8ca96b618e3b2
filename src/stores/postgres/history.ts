import { LIVE, stateFilter } from '../sql/rows.js';

/** The `list` state filters, each its own prepared statement (`all` when there is none). */
export const LIST_FILTERS = ['all', 'pending', 'active', 'retrying', 'succeeded', 'dead', 'cancelled'] as const;

const LIVE_COLUMNS = `id, queue, state, key, payload, attempt, run_at, lease_until, last_error, NULL::text AS result,
  progress, created_at, updated_at, started_at, NULL::bigint AS finished_at, priority, grp`;
const DONE_COLUMNS = `id, queue, state, key, payload, attempt, run_at, NULL::bigint AS lease_until, last_error, result,
  progress, created_at, finished_at AS updated_at, started_at, finished_at, priority, grp`;

/** `list` for one state filter and order: keyset pagination by id over the live table and the history ($1 queue, $2 now, $3 after, $4 key, $5 limit, $6 group). */
function listSql(s: string, which: (typeof LIST_FILTERS)[number], newest: boolean): string {
  const state = which === 'all' ? undefined : which;
  // Every parameter appears in every variant (Postgres must infer each one's type).
  const filter = `${stateFilter(state, '$2::bigint')} AND $2::bigint IS NOT NULL`;
  const where = `queue = $1 AND id ${newest ? '<' : '>'} $3 AND ($4::text IS NULL OR key = $4) AND ($6::text IS NULL OR grp = $6) AND ${filter}`;
  const order = newest ? 'id DESC' : 'id';
  const parts: string[] = [];
  if (state !== 'succeeded' && state !== 'cancelled') {
    parts.push(`(SELECT ${LIVE_COLUMNS} FROM ${s}.tasks WHERE ${where} ORDER BY ${order} LIMIT $5)`);
  }
  if (state === undefined || state === 'succeeded' || state === 'cancelled') {
    parts.push(`(SELECT ${DONE_COLUMNS} FROM ${s}.task_history WHERE ${where} ORDER BY ${order} LIMIT $5)`);
  }
  return `SELECT * FROM (${parts.join(' UNION ALL ')}) u ORDER BY ${order} LIMIT $5`;
}

/**
 * Retention in one statement: deletes up to $5 rows of state $2 beyond the
 * newest $4 (by id) or finished before $3, but only while this statement
 * holds the queue's pruning lock (a transaction-level advisory lock, tried,
 * never waited for): on a shared database one process prunes a queue at a
 * time, the others delete nothing and try again at their next round.
 */
function pruneSql(s: string, table: string, finished: string, lockKey: string): string {
  // Dead tasks live in the tasks table: the literal state lets the planner use its partial index tasks_dead.
  const state = table === 'tasks' ? `state = 'dead' AND $2::text = 'dead'` : 'state = $2';
  return `
    WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtextextended('${lockKey}' || $1, 0)) AS got),
    victims AS (
      SELECT id FROM ${s}.${table}
      WHERE queue = $1 AND ${state} AND (SELECT got FROM lock)
        AND (${finished} <= $3 OR id <= coalesce((
          SELECT id FROM ${s}.${table} WHERE queue = $1 AND ${state} ORDER BY id DESC OFFSET $4 LIMIT 1), 0))
      ORDER BY id LIMIT $5)
    DELETE FROM ${s}.${table} WHERE id = ANY(ARRAY(SELECT id FROM victims)) AND queue = $1 AND ${state}
    RETURNING id`;
}

/** The SQL of task history, cancel, progress and retention, for one schema. */
export function historyStatements(s: string, cancelChannel: string, schemaName: string) {
  const lockKey = `keel.prune/${schemaName.replace(/'/g, "''")}/`;
  const list = Object.fromEntries(
    LIST_FILTERS.flatMap((f) => [
      [`list_${f}`, listSql(s, f, false)],
      [`listNewest_${f}`, listSql(s, f, true)],
    ]),
  ) as Record<`${'list' | 'listNewest'}_${(typeof LIST_FILTERS)[number]}`, string>;
  return {
    ...list,
    getDone: `SELECT *, finished_at AS updated_at FROM ${s}.task_history WHERE id = $2 AND queue = $1`,
    // A live task leaves the live table for the history in one statement; its holder (another process) hears of
    // it by NOTIFY and, failing that, at its next lease renewal, which finds the row gone.
    cancel: `
      WITH gone AS (
        DELETE FROM ${s}.tasks WHERE id = $2 AND queue = $1 AND ${LIVE} RETURNING *),
      kept AS (
        INSERT INTO ${s}.task_history (id, queue, state, key, payload, result, last_error, progress, attempt, run_at,
          created_at, started_at, finished_at, priority, grp)
        SELECT id, queue, 'cancelled', key, payload, NULL, last_error, progress, attempt, run_at, created_at,
          started_at, $3, priority, grp FROM gone),
      counted AS (
        INSERT INTO ${s}.queue_counts (queue, shard, cancelled) SELECT $1, 0, 1 FROM gone
        ON CONFLICT (queue, shard) DO UPDATE SET cancelled = ${s}.queue_counts.cancelled + 1)
      SELECT (SELECT count(*) FROM gone) AS cancelled,
        (SELECT count(*) FROM (SELECT pg_notify('${cancelChannel}', $2::text || ':' || $1) FROM gone) n) AS told`,
    isFinished: `
      SELECT EXISTS (SELECT 1 FROM ${s}.tasks WHERE id = $2 AND queue = $1 AND state = 'dead')
        OR EXISTS (SELECT 1 FROM ${s}.task_history WHERE id = $2 AND queue = $1) AS finished`,
    // $3: { id: [token, progress] }; rows locked in id order like renew and settle.
    progress: `
      WITH locked AS (
        SELECT id FROM ${s}.tasks WHERE id = ANY($2::bigint[]) AND queue = $1 ORDER BY id FOR UPDATE)
      UPDATE ${s}.tasks t SET progress = $3::jsonb -> t.id::text ->> 1, updated_at = $4
      WHERE t.id = ANY(ARRAY(SELECT id FROM locked)) AND t.queue = $1 AND t.state || '' = 'active'
        AND t.lease_token = $3::jsonb -> t.id::text ->> 0
      RETURNING t.id`,
    // onDuplicate 'replace': $2 ids, $3 payloads (the last one per id wins: the caller sends one per id).
    replace: `
      UPDATE ${s}.tasks t SET payload = v.payload, updated_at = $4
      FROM unnest($2::bigint[], $3::text[]) AS v(id, payload)
      WHERE t.id = v.id AND t.queue = $1 AND t.state = 'pending'
      RETURNING t.id`,
    pruneDone: pruneSql(s, 'task_history', 'finished_at', lockKey),
    pruneDead: pruneSql(s, 'tasks', 'updated_at', lockKey),
  };
}

/** The history statements of one schema, by name. */
export type HistorySql = ReturnType<typeof historyStatements>;
