import { claimedTasks, nextDue, queueStats, taskRecord as record, type TaskRow, UNLIMITED } from '../sql/rows.js';
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
import { isTaskId, renewValues, settleValues, type TaskSql, taskStatements } from './taskSql.js';

/** What the task methods need from `pg`: a pool, or a client inside the caller's transaction. */
export interface Queryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: any[]; rowCount: number | null }>;
}

const SHARDS = 16;
/** How often a claim scans from the start of the queue instead of from the last key it claimed. */
const REWIND_MS = 1000;

/** A reap also looks this far behind the last one, for leases whose holder had them locked then. */
const REAP_OVERLAP_MS = 1000;
/** How often a reap looks at every lease, for what the overlap missed (a holder's failed settle). */
const FULL_REAP_MS = 10_000;

/** A position in the claim order. */
interface Key {
  runAt: number;
  id: number;
}
/** Before every task: `run_at` is epoch ms, ids start at 1. */
const FIRST: Key = { runAt: Number.MIN_SAFE_INTEGER, id: 0 };
type ClaimedRow = Parameters<typeof claimedTasks>[0][number];

/** The largest key among `rows` and `floor` (FIRST when there is neither). */
function lastKey(rows: readonly ClaimedRow[], floor: Key = FIRST): Key {
  let k = floor;
  for (const r of rows) {
    // Number(): on a plain client (not the store's pool) bigint columns arrive as strings.
    const runAt = Number(r.run_at);
    const id = Number(r.id);
    if (runAt > k.runAt || (runAt === k.runAt && id > k.id)) k = { runAt, id };
  }
  return k;
}

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
  const sql: TaskSql = taskStatements(schema, channel);
  const shard = Math.floor(Math.random() * SHARDS);
  // Per queue: where the next claim starts, and when it scans from the start again.
  const cursors = new Map<string, Key & { rewindAt: number }>();
  // Per queue: the time of the last reap, and when a reap scans all leases again.
  const reaps = new Map<string, { to: number; fullAt: number }>();
  const run = (name: keyof TaskSql, values: unknown[], on: Queryable = db()) =>
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
      const scan = (n: number, after: Key) =>
        run('claim', [queue, now, n, token, leaseUntil, after.runAt, after.id]).then((r) => r.rows as ClaimedRow[]);
      const cursor = cursors.get(queue);
      let rows: ClaimedRow[] = [];
      if (cursor && now < cursor.rewindAt) {
        rows = await scan(limit, cursor);
        if (rows.length === limit) {
          cursors.set(queue, { ...lastKey(rows), rewindAt: cursor.rewindAt });
          return claimedTasks(rows, token);
        }
      }
      // From the start: what the cursor passed over (a task committed after newer ones, a producer whose
      // clock lags) waits at most REWIND_MS longer than its turn.
      const more = await scan(limit - rows.length, FIRST);
      const all = rows.concat(more);
      const last = more.length === limit - rows.length ? lastKey(more) : lastKey(all, cursor);
      cursors.set(queue, { ...last, rewindAt: now + REWIND_MS });
      return claimedTasks(all, token);
    },

    async renew(queue, leases, leaseUntil, now): Promise<string[]> {
      if (leases.length === 0) return [];
      const res = await run('renew', renewValues(queue, leases, leaseUntil, now));
      const kept = new Set((res.rows as { id: number }[]).map((r) => String(r.id)));
      return leases.filter((l) => !kept.has(l.id)).map((l) => l.id);
    },

    async settle(queue, outcomes: readonly Outcome[], now): Promise<boolean[]> {
      if (outcomes.length === 0) return [];
      const res = await run('settle', settleValues(queue, outcomes, now, shard));
      const applied = new Set((res.rows as { id: number }[]).map((r) => String(r.id)));
      return outcomes.map((o) => applied.has(o.id));
    },

    async expireLeases(queue, now, maxAttempts): Promise<ExpiredLease[]> {
      const max = Number.isFinite(maxAttempts) ? maxAttempts : UNLIMITED;
      // From a little before the last reap (a row its holder had locked then), and from the start now and then.
      const last = reaps.get(queue);
      const full = !last || now >= last.fullAt;
      const from = full ? Number.MIN_SAFE_INTEGER : last.to - REAP_OVERLAP_MS;
      const res = await run('expire', [queue, now, max, from]);
      reaps.set(queue, { to: Math.max(now, last?.to ?? now), fullAt: full ? now + FULL_REAP_MS : last.fullAt });
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

/** An id as the bigint column wants it, or undefined when it cannot be one of ours. */
function toId(id: string): number | undefined {
  return isTaskId(id) ? Number(id) : undefined;
}
