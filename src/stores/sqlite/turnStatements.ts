import type Database from 'better-sqlite3';

/** The row claims return (`claimedTasks` reads it). */
export const CLAIMED = 'id, payload, attempt, key, run_at, priority, grp, trace_context';

const ACTIVATE = `UPDATE keel_tasks SET state = 'active', attempt = attempt + 1, lease_token = @token,
  lease_until = @leaseUntil, updated_at = @now, started_at = coalesce(started_at, @now)`;

// INDEXED BY: without statistics (nothing runs ANALYZE) the planner may walk the queue's whole ready index
// (keel_tasks_ready) for each group instead of the group's own entries.
const GROUP_READY = `FROM keel_tasks INDEXED BY keel_tasks_group_ready
  WHERE queue = @queue AND grp = {grp} AND grp IS NOT NULL AND state IN ('pending', 'retrying')`;
// A group's slots in use: active tasks and tasks waiting out a backoff (a task that is due again frees its slot).
const GROUP_HELD = `FROM keel_tasks INDEXED BY keel_tasks_group_held
  WHERE queue = @queue AND grp = {grp} AND grp IS NOT NULL AND state IN ('active', 'retrying')`;
const of = (sql: string, grp: string) => sql.replace('{grp}', grp);

/** The statements of the turns claim, by name. */
export type TurnStatement =
  | 'activeCount'
  | 'limitsRow'
  | 'saveLimits'
  | 'ensureUngrouped'
  | 'turns'
  | 'starts'
  | 'nextServed'
  | 'candidates'
  | 'holding'
  | 'ungrouped'
  | 'activate'
  | 'idle'
  | 'served';

/**
 * The statements of the turns claim (`turns.ts`). Groups are passed as JSON
 * arrays (`json_each`), so one statement serves many groups: the claim's cost
 * follows the tasks it takes, not one round trip per group.
 */
export function prepareTurnStatements(db: Database.Database): Record<TurnStatement, Database.Statement> {
  return {
    // @finished: the claimer's finished tasks as {id: token}; those still leased to it hold no fleet slot.
    activeCount: db.prepare(
      `SELECT count(*) AS n FROM keel_tasks WHERE queue = @queue AND state = 'active'
         AND lease_token IS NOT coalesce(json_extract(@finished, '$."' || id || '"'), '')`,
    ),
    limitsRow: db.prepare(`SELECT starts FROM keel_limits WHERE queue = ?`),
    saveLimits: db.prepare(
      `INSERT INTO keel_limits (queue, starts) VALUES (?, ?) ON CONFLICT (queue) DO UPDATE SET starts = excluded.starts`,
    ),
    ensureUngrouped: db.prepare(`INSERT OR IGNORE INTO keel_groups (queue, grp) VALUES (?, '')`),
    /** The next @n groups taking turns after (@served, @grp): a page of the turn index, covered by it. */
    turns: db.prepare(
      `SELECT grp, served FROM keel_groups WHERE queue = @queue AND idle = 0 AND (served, grp) > (@served, @grp)
       ORDER BY served, grp LIMIT @n`,
    ),
    /** Each group's claim times in its rate window (only read under a groupRateLimit). */
    starts: db
      .prepare(
        `SELECT g.starts AS starts FROM json_each(@groups) j JOIN keel_groups g ON g.queue = @queue AND g.grp = j.value
       ORDER BY j.key`,
      )
      .pluck(),
    // From the turn index (groups taking turns), not max() over every group the queue ever had.
    nextServed: db.prepare(
      `SELECT coalesce((SELECT served FROM keel_groups WHERE queue = ? AND idle = 0 ORDER BY served DESC LIMIT 1), 0) + 1 AS n`,
    ),
    /** Up to @cap due tasks of each group in @groups: `pos` is the group's index in the array. */
    candidates: db.prepare(
      `SELECT j.key AS pos, t.id AS id, t.priority AS priority
       FROM json_each(@groups) j JOIN keel_tasks t ON t.id IN (
         SELECT id ${of(GROUP_READY, 'j.value')} AND run_at <= @now ORDER BY priority, id LIMIT @cap)`,
    ),
    /** The slots in use of each group in @groups. */
    holding: db.prepare(
      `SELECT j.key AS pos, (SELECT count(*) ${of(GROUP_HELD, 'j.value')} AND (state = 'active' OR run_at > @now)) AS n
       FROM json_each(@groups) j`,
    ),
    /** Tasks without a group, in claim order. */
    ungrouped: db.prepare(
      `${ACTIVATE} WHERE id IN (
         SELECT id FROM keel_tasks INDEXED BY keel_tasks_ordered
         WHERE queue = @queue AND state IN ('pending', 'retrying') AND grp IS NULL AND run_at <= @now
         ORDER BY priority, run_at, id LIMIT @limit)
       RETURNING ${CLAIMED}`,
    ),
    /** The tasks picked from groups (@ids, a JSON array), still pending or retrying in this transaction. */
    activate: db.prepare(
      `${ACTIVATE} WHERE id IN (SELECT value FROM json_each(@ids)) AND state IN ('pending', 'retrying')
       RETURNING ${CLAIMED}`,
    ),
    /** Visited groups without live tasks leave the turns (an enqueue or redrive puts them back). */
    idle: db.prepare(
      `UPDATE keel_groups SET idle = 1
       WHERE queue = @queue AND grp IN (SELECT value FROM json_each(@groups))
         AND NOT EXISTS (SELECT 1 ${of(GROUP_READY, 'keel_groups.grp')})
         AND NOT EXISTS (SELECT 1 ${of(GROUP_HELD, 'keel_groups.grp')})
       RETURNING grp`,
    ),
    /**
     * Visited groups go to the back of the turns in visit order: @visits is a
     * JSON array of [group, starts or null]. An upsert, so SQLite looks each
     * group up by its key (an UPDATE ... FROM would scan the queue's groups).
     */
    served: db.prepare(
      `INSERT INTO keel_groups (queue, grp, served, starts)
       SELECT @queue, j.value ->> 0, @base + j.key, coalesce(j.value ->> 1, '[]') FROM json_each(@visits) j WHERE true
       ON CONFLICT (queue, grp) DO UPDATE SET served = excluded.served,
         starts = CASE WHEN @rated THEN excluded.starts ELSE starts END`,
    ),
  };
}
