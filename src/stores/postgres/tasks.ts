import { claimedTasks, LIVE, nextDue, queueStats, taskRecord as record, type TaskRow, UNLIMITED } from '../sql/rows.js';
import type {
  ClaimedTask,
  EnqueueResult,
  ExpiredLease,
  NewTask,
  Outcome,
  QueueStats,
  TaskRecord,
  TaskStore,
} from '../store.js';

/** What the task methods need from `pg`: a pool, or a client inside the caller's transaction. */
export interface Queryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: any[]; rowCount: number | null }>;
}

const SHARDS = 16;

/** The SQL of the task half, for one schema. Each is one statement, so each call is one round trip. */
function statements(s: string, channel: string) {
  return {
    // Input rows carry a pre-drawn id: the result maps back to the request order without trusting RETURNING's order.
    // Rows go in key order: two batches waiting on each other's uncommitted keys then wait in one order, not in a cycle.
    enqueue: `
      WITH input AS (
        SELECT i.ord, i.payload, i.key, i.run_at, nextval('${s}.tasks_id_seq') AS new_id
        FROM unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS i(payload, key, run_at, ord)),
      ins AS (
        INSERT INTO ${s}.tasks (id, queue, state, key, payload, attempt, run_at, created_at, updated_at)
        SELECT new_id, $1, 'pending', key, payload, 0, run_at, $5, $5 FROM input ORDER BY key, ord
        ON CONFLICT (queue, key) WHERE key IS NOT NULL AND ${LIVE} DO NOTHING
        RETURNING id)
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
    claim: `
      WITH picked AS (
        SELECT id FROM ${s}.tasks
        WHERE queue = $1 AND state IN ('pending', 'retrying') AND run_at <= $2
        ORDER BY run_at, id LIMIT $3
        FOR UPDATE SKIP LOCKED)
      UPDATE ${s}.tasks t SET state = 'active', attempt = t.attempt + 1, lease_token = $4,
        lease_until = $5, updated_at = $2
      FROM picked WHERE t.id = picked.id
      RETURNING t.id, t.payload, t.attempt, t.key, t.run_at`,
    // \`t.id = ANY\` and \`state || ''\` keep the planner on the primary key: the queue's statistics are often
    // missing or stale (a fresh or busy table), and a partial index it then prefers makes the join O(n * batch).
    // Every statement that waits for task row locks takes them in id order first (the locked CTE), and lease
    // expiry skips locked rows: statements of several processes on the same rows then queue up, never deadlock.
    renew: `
      WITH locked AS (
        SELECT id FROM ${s}.tasks WHERE id = ANY($2::bigint[]) AND queue = $1 ORDER BY id FOR UPDATE)
      UPDATE ${s}.tasks t SET lease_until = $4, updated_at = $5
      FROM unnest($2::bigint[], $3::text[]) AS l(id, token), locked k
      WHERE t.id = ANY($2::bigint[]) AND t.id = l.id AND t.id = k.id AND t.queue = $1 AND t.state || '' = 'active'
        AND t.lease_token = l.token
      RETURNING t.id`,
    settle: `
      WITH o AS (
        SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[])
          AS o(id, token, kind, run_at, error)),
      locked AS (
        SELECT id FROM ${s}.tasks WHERE id = ANY($2::bigint[]) AND queue = $1 ORDER BY id FOR UPDATE),
      done AS (
        DELETE FROM ${s}.tasks t USING o, locked k
        WHERE t.id = ANY($9::bigint[]) AND o.kind = 'succeeded' AND t.id = o.id AND t.id = k.id AND t.queue = $1
          AND t.state || '' = 'active' AND t.lease_token = o.token
        RETURNING t.id),
      moved AS (
        UPDATE ${s}.tasks t SET
          state = CASE o.kind WHEN 'released' THEN 'pending' ELSE o.kind END,
          run_at = CASE WHEN o.kind = 'dead' THEN t.run_at ELSE o.run_at END,
          attempt = CASE WHEN o.kind = 'released' THEN greatest(t.attempt - 1, 0) ELSE t.attempt END,
          last_error = CASE WHEN o.kind = 'released' THEN t.last_error ELSE o.error END,
          lease_token = NULL, lease_until = NULL, updated_at = $7
        FROM o, locked k
        WHERE t.id = ANY($10::bigint[]) AND o.kind <> 'succeeded' AND t.id = o.id AND t.id = k.id AND t.queue = $1
          AND t.state || '' = 'active' AND t.lease_token = o.token
        RETURNING t.id),
      -- The count row is locked last: reading all of locked first keeps the lock order rows, then count.
      counted AS (
        INSERT INTO ${s}.queue_counts (queue, shard, succeeded)
        SELECT $1, $8, d.n FROM (SELECT count(*) AS n FROM done) d, (SELECT count(*) FROM locked) k
        WHERE d.n > 0
        ON CONFLICT (queue, shard) DO UPDATE SET succeeded = ${s}.queue_counts.succeeded + excluded.succeeded)
      SELECT id FROM done UNION ALL SELECT id FROM moved`,
    // A row locked by its holder (settling or renewing it) is left for the next reap.
    expire: `
      WITH due AS (
        SELECT id FROM ${s}.tasks WHERE queue = $1 AND state = 'active' AND lease_until <= $2
        FOR UPDATE SKIP LOCKED)
      UPDATE ${s}.tasks t SET
        state = CASE WHEN t.attempt < $3::bigint THEN 'pending' ELSE 'dead' END,
        run_at = CASE WHEN t.attempt < $3::bigint THEN $2 ELSE t.run_at END,
        last_error = CASE WHEN t.attempt < $3::bigint THEN t.last_error
          ELSE 'lease expired on attempt ' || t.attempt END,
        lease_token = NULL, lease_until = NULL, updated_at = $2
      FROM due WHERE t.id = due.id
      RETURNING t.id, t.state`,
    nextDue: `
      SELECT (SELECT min(run_at) FROM ${s}.tasks WHERE queue = $1 AND state IN ('pending', 'retrying')) AS due,
             (SELECT min(lease_until) FROM ${s}.tasks WHERE queue = $1 AND state = 'active') AS lease`,
    stats: `
      SELECT state, count(*) FILTER (WHERE run_at > $2) AS later, count(*) AS n
      FROM ${s}.tasks WHERE queue = $1 GROUP BY state`,
    succeeded: `SELECT coalesce(sum(succeeded), 0)::bigint AS n FROM ${s}.queue_counts WHERE queue = $1`,
    dead: `SELECT * FROM ${s}.tasks WHERE queue = $1 AND state = 'dead' ORDER BY id LIMIT $2::bigint`,
    redrive: `
      UPDATE ${s}.tasks t SET state = 'pending', attempt = 0, last_error = NULL, run_at = $3, updated_at = $3
      WHERE t.id = $2 AND t.queue = $1 AND t.state = 'dead'
        AND (t.key IS NULL OR NOT EXISTS (
          SELECT 1 FROM ${s}.tasks l WHERE l.queue = $1 AND l.key = t.key AND l.${LIVE}))
      RETURNING t.id`,
    isDead: `SELECT 1 FROM ${s}.tasks WHERE id = $2 AND queue = $1 AND state = 'dead'`,
    get: `SELECT * FROM ${s}.tasks WHERE id = $2 AND queue = $1`,
  };
}

type Sql = ReturnType<typeof statements>;

/** Enqueues on `db`: the store's pool, or a caller's client in an open transaction (then it commits with the caller). */
export type EnqueueOn = (
  db: Queryable,
  queue: string,
  tasks: readonly NewTask[],
  now: number,
) => Promise<EnqueueResult[]>;

/**
 * The task half of the Postgres store. `db()` is the pool (it throws while
 * the store is closed); `tag` makes prepared statement names unique per schema.
 */
export function postgresTasks(
  db: () => Queryable,
  schema: string,
  channel: string,
  tag: string,
): TaskStore & { enqueueOn: EnqueueOn } {
  const sql: Sql = statements(schema, channel);
  const shard = Math.floor(Math.random() * SHARDS);
  const run = (name: keyof Sql, values: unknown[], on: Queryable = db()) =>
    on.query({ name: `keel_${tag}_${name}`, text: sql[name], values });

  const enqueueOn: EnqueueOn = async (on, queue, tasks, now) => {
    // Same key twice in one batch: the later one is a duplicate of the first (ON CONFLICT cannot see in-flight rows twice).
    const out: (EnqueueResult | number)[] = new Array(tasks.length);
    const firstOfKey = new Map<string, number>();
    const payloads: string[] = [];
    const keys: (string | null)[] = [];
    const runAts: number[] = [];
    const slot: number[] = [];
    tasks.forEach((t, i) => {
      if (t.key !== undefined) {
        const first = firstOfKey.get(t.key);
        if (first !== undefined) {
          out[i] = first;
          return;
        }
        firstOfKey.set(t.key, i);
      }
      slot.push(i);
      payloads.push(t.payload);
      keys.push(t.key ?? null);
      runAts.push(t.runAt);
    });
    const res = await run('enqueue', [queue, payloads, keys, runAts, now], on);
    const unresolved: number[] = [];
    // Number(): on a caller's client (a `tx`), bigint columns arrive as strings.
    for (const row of res.rows as { ord: number; inserted: number | null; existing: number | null }[]) {
      const i = slot[Number(row.ord) - 1]!;
      if (row.inserted !== null) out[i] = { id: String(row.inserted), deduplicated: false };
      else if (row.existing !== null) out[i] = { id: String(row.existing), deduplicated: true };
      else unresolved.push(i);
    }
    if (unresolved.length > 0) {
      // The conflicting task committed after this statement's snapshot: a fresh read sees it.
      const wanted = unresolved.map((i) => tasks[i]!.key as string);
      const live = await run('liveKeys', [queue, wanted], on);
      const byKey = new Map((live.rows as { key: string; id: number }[]).map((r) => [r.key, r.id]));
      const retry: number[] = [];
      for (const i of unresolved) {
        const id = byKey.get(tasks[i]!.key as string);
        if (id !== undefined) out[i] = { id: String(id), deduplicated: true };
        else retry.push(i);
      }
      if (retry.length > 0) {
        // That task finished in between, freeing its key: add these again.
        const again = await enqueueOn(
          on,
          queue,
          retry.map((i) => tasks[i]!),
          now,
        );
        retry.forEach((i, j) => {
          out[i] = again[j]!;
        });
      }
    }
    return out.map((r) => (typeof r === 'number' ? { id: (out[r] as EnqueueResult).id, deduplicated: true } : r));
  };

  return {
    enqueueOn,

    enqueue(queue, tasks, now) {
      return enqueueOn(db(), queue, tasks, now);
    },

    async claim(queue, { limit, now, leaseUntil, token }): Promise<ClaimedTask[]> {
      const res = await run('claim', [queue, now, limit, token, leaseUntil]);
      return claimedTasks(res.rows, token);
    },

    async renew(queue, leases, leaseUntil, now): Promise<string[]> {
      if (leases.length === 0) return [];
      const ids = leases.map((l) => numericId(l.id));
      const res = await run('renew', [queue, ids, leases.map((l) => l.token), leaseUntil, now]);
      const kept = new Set((res.rows as { id: number }[]).map((r) => String(r.id)));
      return leases.filter((l) => !kept.has(l.id)).map((l) => l.id);
    },

    async settle(queue, outcomes: readonly Outcome[], now): Promise<boolean[]> {
      if (outcomes.length === 0) return [];
      const res = await run('settle', [
        queue,
        outcomes.map((o) => numericId(o.id)),
        outcomes.map((o) => o.token),
        outcomes.map((o) => o.kind),
        outcomes.map((o) => (o.kind === 'retrying' || o.kind === 'released' ? o.runAt : null)),
        outcomes.map((o) => (o.kind === 'retrying' || o.kind === 'dead' ? o.error : null)),
        now,
        shard,
        outcomes.filter((o) => o.kind === 'succeeded').map((o) => numericId(o.id)),
        outcomes.filter((o) => o.kind !== 'succeeded').map((o) => numericId(o.id)),
      ]);
      const applied = new Set((res.rows as { id: number }[]).map((r) => String(r.id)));
      return outcomes.map((o) => applied.has(o.id));
    },

    async expireLeases(queue, now, maxAttempts): Promise<ExpiredLease[]> {
      const max = Number.isFinite(maxAttempts) ? maxAttempts : UNLIMITED;
      const res = await run('expire', [queue, now, max]);
      return (res.rows as { id: number; state: 'pending' | 'dead' }[]).map((r) => ({
        id: String(r.id),
        state: r.state,
      }));
    },

    async nextDueAt(queue): Promise<number | undefined> {
      const row = (await run('nextDue', [queue])).rows[0] as { due: number | null; lease: number | null };
      return nextDue(row.due, row.lease);
    },

    async stats(queue, now): Promise<QueueStats> {
      const [byState, done] = await Promise.all([run('stats', [queue, now]), run('succeeded', [queue])]);
      return queueStats(byState.rows, (done.rows[0] as { n: number }).n);
    },

    async dead(queue, limit = UNLIMITED): Promise<TaskRecord[]> {
      return ((await run('dead', [queue, limit])).rows as TaskRow[]).map((r) => record(r, 0));
    },

    async redrive(queue, id, now) {
      const n = toId(id);
      if (n === undefined) return 'not-found';
      try {
        if ((await run('redrive', [queue, n, now])).rowCount) return 'redriven';
      } catch (error) {
        // A live task took the key between the check and the update.
        if ((error as { code?: string }).code === '23505') return 'deduplicated';
        throw error;
      }
      return (await run('isDead', [queue, n])).rowCount ? 'deduplicated' : 'not-found';
    },

    async get(queue, id, now): Promise<TaskRecord | undefined> {
      const n = toId(id);
      if (n === undefined) return undefined;
      const row = (await run('get', [queue, n])).rows[0] as TaskRow | undefined;
      return row && record(row, now);
    },
  };
}

/** A task id as the bigint column wants it; ids that cannot be ours become 0, which matches no row. */
function numericId(id: string): number {
  return toId(id) ?? 0;
}

function toId(id: string): number | undefined {
  if (!/^[1-9][0-9]{0,15}$/.test(id)) return undefined;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : undefined;
}
