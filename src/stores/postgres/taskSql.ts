import { LIVE } from '../sql/rows.js';
import type { Outcome } from '../store.js';

/** A held lease, as `renew` takes it. */
type Lease = { readonly id: string; readonly token: string };

/** The SQL of the task half, for one schema. Each is one statement, so each call is one round trip. */
export function taskStatements(s: string, channel: string) {
  return {
    // Input rows carry a pre-drawn id: the result maps back to the request order without trusting RETURNING's order.
    // Rows go in key order: two batches waiting on each other's uncommitted keys then wait in one order, not in a cycle.
    enqueue: `
      WITH input AS (
        SELECT i.ord, i.payload, i.key, i.run_at, i.trace_context, i.priority, i.grp,
          nextval('${s}.tasks_id_seq') AS new_id
        FROM unnest($2::text[], $3::text[], $4::bigint[], $6::text[], $7::int[], $8::text[])
          WITH ORDINALITY AS i(payload, key, run_at, trace_context, priority, grp, ord)),
      ins AS (
        INSERT INTO ${s}.tasks (id, queue, state, key, payload, attempt, run_at, created_at, updated_at, trace_context,
          priority, grp)
        SELECT new_id, $1, 'pending', key, payload, 0, run_at, $5, $5, trace_context, coalesce(priority, 0), grp
        FROM input ORDER BY key, ord
        ON CONFLICT (queue, key) WHERE key IS NOT NULL AND ${LIVE} DO NOTHING
        RETURNING id, grp),
      -- A group with a new task takes turns again (migration 7). The row lock (taken even when it is not idle)
      -- makes a claim that is about to find the group empty skip it, or this wait for that claim's verdict.
      woken AS (
        INSERT INTO ${s}.groups AS g (queue, grp)
        SELECT DISTINCT $1, grp FROM ins WHERE grp IS NOT NULL ORDER BY 2
        ON CONFLICT (queue, grp) DO UPDATE SET idle = false WHERE g.idle)
      SELECT input.ord, ins.id AS inserted, live.id AS existing,
        (SELECT pg_notify('${channel}', $1) WHERE EXISTS (SELECT 1 FROM ins)) AS woke
      FROM input
      LEFT JOIN ins ON ins.id = input.new_id
      LEFT JOIN LATERAL (
        SELECT t.id FROM ${s}.tasks t WHERE t.queue = $1 AND t.key = input.key AND t.${LIVE}
      ) live ON ins.id IS NULL
      ORDER BY input.ord`,
    liveKeys: `SELECT key, id FROM ${s}.tasks WHERE queue = $1 AND key = ANY($2::text[]) AND ${LIVE}`,
    // SKIP LOCKED: concurrent claimers (other workers, other processes) take different rows instead of queueing on locks.
    // Starts after ($6, $7), the last key this store claimed: the entries before it are claimed and settled
    // tasks whose index entries stay until VACUUM, and a scan from the start walks all of them (a 200k backlog
    // slowed to a fraction of its start). A claim is not worth an fsync (synchronous_commit off for this
    // transaction only): if the database loses it in a crash the task is simply claimed again, and the settle
    // that follows commits synchronously, which flushes the claim's WAL with it.
    // A queue whose tasks have groups claims through claim_turns instead: then this claims nothing and returns
    // one row whose id is null.
    claim: `
      WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
      grouped AS (SELECT EXISTS (
        SELECT 1 FROM ${s}.groups g WHERE g.queue = $1 AND NOT g.idle AND g.grp <> '') AS yes),
      claimed AS (
        UPDATE ${s}.tasks t SET state = 'active', attempt = t.attempt + 1, lease_token = $4,
          lease_until = $5, updated_at = $2, started_at = coalesce(t.started_at, $2)
        WHERE t.id = ANY(ARRAY(SELECT ${s}.claimable_ordered($1, $2,
            CASE WHEN (SELECT yes FROM grouped) THEN 0 ELSE $3 END, $6, $7, $8)))
          AND EXISTS (SELECT FROM async)
        RETURNING t.id, t.payload, t.attempt, t.key, t.run_at, t.priority, t.grp, t.trace_context)
      SELECT * FROM claimed
      UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM grouped WHERE yes`,
    // The claim of a queue with groups or limits (migration 7): $6.. are the limits (null: none), then the key after
    // which tasks without a group are looked for, and the claimer's finished tasks as { id: token }.
    claimTurns: `SELECT * FROM ${s}.claim_turns($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    // No statement here joins the batch with the table: without statistics (a fresh table; autovacuum off or
    // behind) the planner estimates one row for a CTE and rescans it once per row, so a settle of n outcomes
    // did n^2 work, took longer, let more outcomes pile up behind it, and the queue collapsed. Instead each
    // row is found through the primary key (`t.id = ANY(...)`, an index condition whatever the estimates) and
    // its own values are looked up in a jsonb object keyed by id (a binary search), never joined.
    // `state || ''` keeps the planner off the partial indexes, whose scans grow with the queue.
    // Every statement that waits for task row locks takes them in id order first (the locked CTE), and lease
    // expiry skips locked rows: statements of several processes on the same rows then queue up, never deadlock.
    renew: `
      WITH locked AS (
        SELECT id FROM ${s}.tasks WHERE id = ANY($2::bigint[]) AND queue = $1 ORDER BY id FOR UPDATE)
      UPDATE ${s}.tasks t SET lease_until = $4, updated_at = $5
      WHERE t.id = ANY(ARRAY(SELECT id FROM locked)) AND t.queue = $1 AND t.state || '' = 'active'
        AND t.lease_token = $3::jsonb ->> t.id::text
      RETURNING t.id`,
    // $3: { id: [token, kind, runAt, error, result] }. A succeeded task moves to task_history (with its result)
    // in this same statement.
    settle: `
      WITH locked AS (
        SELECT id FROM ${s}.tasks WHERE id = ANY($2::bigint[]) AND queue = $1 ORDER BY id FOR UPDATE),
      done AS (
        DELETE FROM ${s}.tasks t
        WHERE t.id = ANY(ARRAY(SELECT id FROM locked)) AND t.queue = $1 AND t.state || '' = 'active'
          AND t.lease_token = $3::jsonb -> t.id::text ->> 0 AND $3::jsonb -> t.id::text ->> 1 = 'succeeded'
        RETURNING t.*),
      kept AS (
        INSERT INTO ${s}.task_history (id, queue, state, key, payload, result, last_error, progress, attempt, run_at,
          created_at, started_at, finished_at, priority, grp)
        SELECT d.id, d.queue, 'succeeded', d.key, d.payload, $3::jsonb -> d.id::text ->> 4, d.last_error, d.progress,
          d.attempt, d.run_at, d.created_at, d.started_at, $4, d.priority, d.grp
        FROM done d),
      moved AS (
        UPDATE ${s}.tasks t SET
          state = CASE $3::jsonb -> t.id::text ->> 1 WHEN 'released' THEN 'pending' WHEN 'deferred' THEN 'retrying'
            ELSE $3::jsonb -> t.id::text ->> 1 END,
          run_at = CASE $3::jsonb -> t.id::text ->> 1 WHEN 'dead' THEN t.run_at
            ELSE ($3::jsonb -> t.id::text ->> 2)::bigint END,
          attempt = CASE WHEN $3::jsonb -> t.id::text ->> 1 IN ('released', 'deferred') THEN greatest(t.attempt - 1, 0)
            ELSE t.attempt END,
          last_error = CASE WHEN $3::jsonb -> t.id::text ->> 1 IN ('released', 'deferred') THEN t.last_error
            ELSE $3::jsonb -> t.id::text ->> 3 END,
          lease_token = NULL, lease_until = NULL, updated_at = $4
        WHERE t.id = ANY(ARRAY(SELECT id FROM locked)) AND t.queue = $1 AND t.state || '' = 'active'
          AND t.lease_token = $3::jsonb -> t.id::text ->> 0 AND $3::jsonb -> t.id::text ->> 1 <> 'succeeded'
        RETURNING t.id),
      -- The count row is locked last: reading all of locked first keeps the lock order rows, then count.
      counted AS (
        INSERT INTO ${s}.queue_counts (queue, shard, succeeded)
        SELECT $1, $5, d.n FROM (SELECT count(*) AS n FROM done) d, (SELECT count(*) FROM locked) k
        WHERE d.n > 0
        ON CONFLICT (queue, shard) DO UPDATE SET succeeded = ${s}.queue_counts.succeeded + excluded.succeeded)
      SELECT id FROM done UNION ALL SELECT id FROM moved`,
    // A row locked by its holder (settling or renewing it) is left for the next reap. Leases that ran out
    // before $4 were reaped already: settled tasks leave their tasks_leases entries behind until VACUUM, and a
    // reap from the start of the index walked all of them every second (a 1M backlog slowed by half once its
    // first leases were older than leaseMs).
    expire: `
      UPDATE ${s}.tasks t SET
        state = CASE WHEN t.attempt < $3::bigint THEN 'pending' ELSE 'dead' END,
        run_at = CASE WHEN t.attempt < $3::bigint THEN $2 ELSE t.run_at END,
        last_error = CASE WHEN t.attempt < $3::bigint THEN t.last_error
          ELSE 'lease expired on attempt ' || t.attempt END,
        lease_token = NULL, lease_until = NULL, updated_at = $2
      WHERE t.id = ANY(ARRAY(
        SELECT id FROM ${s}.tasks WHERE queue = $1 AND state = 'active' AND lease_until <= $2 AND lease_until > $4
        FOR UPDATE SKIP LOCKED))
      RETURNING t.id, t.state`,
    nextDue: `
      SELECT (SELECT min(run_at) FROM ${s}.tasks WHERE queue = $1 AND state IN ('pending', 'retrying')) AS due,
             (SELECT min(lease_until) FROM ${s}.tasks WHERE queue = $1 AND state = 'active') AS lease`,
    stats: `
      SELECT state, count(*) FILTER (WHERE run_at > $2) AS later, count(*) AS n
      FROM ${s}.tasks WHERE queue = $1 GROUP BY state`,
    succeeded: `SELECT coalesce(sum(succeeded), 0)::bigint AS n, coalesce(sum(cancelled), 0)::bigint AS c
      FROM ${s}.queue_counts WHERE queue = $1`,
    dead: `SELECT * FROM ${s}.tasks WHERE queue = $1 AND state = 'dead' ORDER BY id LIMIT $2::bigint`,
    // Keeps the priority and group; the group takes turns again.
    redrive: `
      WITH revived AS (
        UPDATE ${s}.tasks t SET state = 'pending', attempt = 0, last_error = NULL, run_at = $3, updated_at = $3
        WHERE t.id = $2 AND t.queue = $1 AND t.state = 'dead'
          AND (t.key IS NULL OR NOT EXISTS (
            SELECT 1 FROM ${s}.tasks l WHERE l.queue = $1 AND l.key = t.key AND l.${LIVE}))
        RETURNING t.id, t.grp),
      woken AS (
        INSERT INTO ${s}.groups AS g (queue, grp) SELECT $1, grp FROM revived WHERE grp IS NOT NULL
        ON CONFLICT (queue, grp) DO UPDATE SET idle = false WHERE g.idle)
      SELECT id FROM revived`,
    isDead: `SELECT 1 FROM ${s}.tasks WHERE id = $2 AND queue = $1 AND state = 'dead'`,
    get: `SELECT * FROM ${s}.tasks WHERE id = $2 AND queue = $1`,
  };
}

/** The task statements of one schema, by name. */
export type TaskSql = ReturnType<typeof taskStatements>;

/** The parameters of `settle`: ids in order (the lock order) and each outcome by id. */
export function settleValues(queue: string, outcomes: readonly Outcome[], now: number, shard: number): unknown[] {
  const byId: Record<string, [string, Outcome['kind'], number | null, string | null, string | null]> = {};
  for (const o of outcomes) {
    if (!isTaskId(o.id)) continue;
    byId[o.id] = [
      o.token,
      o.kind,
      o.kind === 'retrying' || o.kind === 'released' || o.kind === 'deferred' ? o.runAt : null,
      o.kind === 'retrying' || o.kind === 'dead' ? o.error : null,
      o.kind === 'succeeded' ? (o.result ?? null) : null,
    ];
  }
  return [queue, sortedIds(outcomes), JSON.stringify(byId), now, shard];
}

/** The parameters of `renew`: ids in order and each lease's token by id. */
export function renewValues(queue: string, leases: readonly Lease[], leaseUntil: number, now: number): unknown[] {
  const tokens: Record<string, string> = {};
  for (const l of leases) if (isTaskId(l.id)) tokens[l.id] = l.token;
  return [queue, sortedIds(leases), JSON.stringify(tokens), leaseUntil, now];
}

/** The ids that can be ours, ascending (ids that cannot be are left out: they match no row). */
function sortedIds(items: readonly { id: string }[]): number[] {
  const ids: number[] = [];
  for (const { id } of items) if (isTaskId(id)) ids.push(Number(id));
  return ids.sort((a, b) => a - b);
}

/** True when `id` can be a task id of ours: a positive integer below 2^53, as text. */
export function isTaskId(id: string): boolean {
  return /^[1-9][0-9]{0,15}$/.test(id) && Number.isSafeInteger(Number(id));
}
