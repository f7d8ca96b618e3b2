import {
  claimedTasks,
  finishedJson,
  listBound,
  nextDue,
  pruneParams,
  queueStats,
  taskRecord as record,
  type TaskRow,
  UNLIMITED,
} from '../sql/rows.js';
import type {
  CancelResult,
  ClaimedTask,
  ClaimLimits,
  ClaimRequest,
  EnqueueResult,
  ExpiredLease,
  NewTask,
  Outcome,
  QueueStats,
  TaskPage,
  TaskRecord,
  TaskStore,
} from '../store.js';
import { type HistorySql, historyStatements } from './history.js';
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

/** A position in the claim order of the tasks without a group. */
interface Key {
  priority: number;
  runAt: number;
  id: number;
}
/** Before every task: priorities are 32-bit integers, `run_at` is epoch ms, ids start at 1. */
const FIRST: Key = { priority: -(2 ** 31), runAt: Number.MIN_SAFE_INTEGER, id: 0 };
/** How long a queue found to have groups claims through `claim_turns` before the plain claim looks again. */
const GROUPED_MS = 1000;
type ClaimedRow = Parameters<typeof claimedTasks>[0][number];

/** The largest key among `rows` and `floor` (FIRST when there is neither). */
function lastKey(rows: readonly ClaimedRow[], floor: Key = FIRST): Key {
  let k = floor;
  for (const r of rows) {
    if (r.grp !== null && r.grp !== undefined) continue;
    // Number(): on a plain client (not the store's pool) bigint columns arrive as strings.
    const priority = Number(r.priority ?? 0);
    const runAt = Number(r.run_at);
    const id = Number(r.id);
    if (priority > k.priority || (priority === k.priority && (runAt > k.runAt || (runAt === k.runAt && id > k.id)))) {
      k = { priority, runAt, id };
    }
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
  const sql: TaskSql & HistorySql = {
    ...taskStatements(schema, channel),
    ...historyStatements(schema, cancelChannelOf(channel), schema),
  };
  const shard = Math.floor(Math.random() * SHARDS);
  // Per queue: where the next claim starts, and when it scans from the start again.
  const cursors = new Map<string, Key & { rewindAt: number }>();
  // Per queue: the time of the last reap, and when a reap scans all leases again.
  const reaps = new Map<string, { to: number; fullAt: number }>();
  // Per queue: until when it is known to have groups (its claims go through claim_turns).
  const grouped = new Map<string, number>();
  const claimTurns = async (
    queue: string,
    limit: number,
    now: number,
    leaseUntil: number,
    token: string,
    limits: ClaimLimits | undefined,
    finished: ClaimRequest['finished'],
  ): Promise<ClaimedTask[]> => {
    grouped.set(queue, now + GROUPED_MS);
    const cursor = cursors.get(queue);
    const after = cursor && now < cursor.rewindAt ? cursor : FIRST;
    const l = limits ?? {};
    const res = await run('claimTurns', [
      queue,
      now,
      limit,
      token,
      leaseUntil,
      l.globalConcurrency ?? null,
      l.rateLimit?.max ?? null,
      l.rateLimit?.perMs ?? null,
      l.groupConcurrency ?? null,
      l.groupRateLimit?.max ?? null,
      l.groupRateLimit?.perMs ?? null,
      after.priority,
      after.runAt,
      after.id,
      finishedJson(finished),
    ]);
    const rows = res.rows as ClaimedRow[];
    const last = lastKey(rows, after);
    cursors.set(queue, {
      ...last,
      rewindAt: after === FIRST ? now + REWIND_MS : (cursor?.rewindAt ?? now + REWIND_MS),
    });
    return claimedTasks(rows, token);
  };
  const run = (name: keyof typeof sql, values: unknown[], on: Queryable = db()) =>
    on.query({ name: `keel_${tag}_${name}`, text: sql[name], values });

  const enqueueOn: EnqueueOn = async (on, queue, tasks, now) => {
    // Same key twice in one batch: the later one is a duplicate of the first (ON CONFLICT cannot see in-flight rows twice).
    const out: (EnqueueResult | number)[] = new Array(tasks.length);
    const firstOfKey = new Map<string, number>();
    const payloads: string[] = [];
    const keys: (string | null)[] = [];
    const runAts: number[] = [];
    const traces: (string | null)[] = [];
    const priorities: number[] = [];
    const groups: (string | null)[] = [];
    let ahead = false;
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
      traces.push(t.trace ?? null);
      priorities.push(t.priority ?? 0);
      groups.push(t.group ?? null);
      const cursor = cursors.get(queue);
      if (t.group === undefined && cursor && (t.priority ?? 0) < cursor.priority) ahead = true;
    });
    // A task placed before this store's claim cursor (a more urgent priority) is looked for from the start.
    if (ahead) cursors.delete(queue);
    const res = await run('enqueue', [queue, payloads, keys, runAts, now, traces, priorities, groups], on);
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
    const results = out.map((r) =>
      typeof r === 'number' ? { id: (out[r] as EnqueueResult).id, deduplicated: true } : r,
    );
    return replacePending(on, queue, tasks, results, now);
  };

  /** `onDuplicate: 'replace'`: the deduplicated tasks that asked for it give their payload to a pending holder. */
  const replacePending = async (
    on: Queryable,
    queue: string,
    tasks: readonly NewTask[],
    results: EnqueueResult[],
    now: number,
  ): Promise<EnqueueResult[]> => {
    // The last payload per holder wins (two replacing enqueues of one key in one batch).
    const latest = new Map<string, string>();
    tasks.forEach((t, i) => {
      if (t.replace && results[i]!.deduplicated) latest.set(results[i]!.id, t.payload);
    });
    if (latest.size === 0) return results;
    const ids = [...latest.keys()].map(Number);
    const res = await run('replace', [queue, ids, [...latest.values()], now], on);
    const replaced = new Set((res.rows as { id: number }[]).map((r) => String(r.id)));
    return results.map((r, i) =>
      tasks[i]!.replace && r.deduplicated && replaced.has(r.id) ? { id: r.id, deduplicated: false, replaced: true } : r,
    );
  };

  return {
    enqueueOn,

    enqueue(queue, tasks, now) {
      return enqueueOn(db(), queue, tasks, now);
    },

    async claim(queue, { limit, now, leaseUntil, token, limits, finished }): Promise<ClaimedTask[]> {
      const g = grouped.get(queue);
      if (limits !== undefined || (g !== undefined && now < g))
        return claimTurns(queue, limit, now, leaseUntil, token, limits, finished);
      const scan = (n: number, after: Key) =>
        run('claim', [queue, now, n, token, leaseUntil, after.priority, after.runAt, after.id]).then(
          (r) => r.rows as ClaimedRow[],
        );
      const cursor = cursors.get(queue);
      let rows: ClaimedRow[] = [];
      if (cursor && now < cursor.rewindAt) {
        rows = await scan(limit, cursor);
        if (isGroupedMarker(rows)) return claimTurns(queue, limit, now, leaseUntil, token, limits, finished);
        if (rows.length === limit) {
          cursors.set(queue, { ...lastKey(rows), rewindAt: cursor.rewindAt });
          return claimedTasks(rows, token);
        }
      }
      // From the start: what the cursor passed over (a task committed after newer ones, a producer whose
      // clock lags) waits at most REWIND_MS longer than its turn.
      const more = await scan(limit - rows.length, FIRST);
      if (isGroupedMarker(more)) {
        // Tasks already claimed by the first scan are handed out; the rest comes through the turns.
        return claimedTasks(rows, token).concat(
          await claimTurns(queue, limit - rows.length, now, leaseUntil, token, limits, finished),
        );
      }
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
      // A released (or deferred) task may be due again at once, behind this store's claim cursor: the next claim looks from the start.
      if (outcomes.some((o) => (o.kind === 'released' || o.kind === 'deferred') && applied.has(o.id))) {
        cursors.delete(queue);
      }
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
      // A task whose lease ran out is pending with its old key, behind the claim cursor: look from the start.
      if ((res.rows as { state: string }[]).some((r) => r.state === 'pending')) cursors.delete(queue);
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
      const counts = done.rows[0] as { n: number; c: number };
      return queueStats(byState.rows, Number(counts.n), Number(counts.c));
    },

    async dead(queue, limit = UNLIMITED): Promise<TaskRecord[]> {
      return ((await run('dead', [queue, limit])).rows as TaskRow[]).map((r) => record(r, 0));
    },

    async redrive(queue, id, now) {
      const n = toId(id);
      if (n === undefined) return 'not-found';
      try {
        if ((await run('redrive', [queue, n, now])).rowCount) {
          // Its key (run_at = now) may sort before this store's claim cursor: the next claim looks from the start.
          cursors.delete(queue);
          return 'redriven';
        }
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
      const row = ((await run('get', [queue, n])).rows[0] ?? (await run('getDone', [queue, n])).rows[0]) as
        | TaskRow
        | undefined;
      return row && record(row, now);
    },

    async cancel(queue, id, now): Promise<CancelResult> {
      const n = toId(id);
      if (n === undefined) return 'not-found';
      const row = (await run('cancel', [queue, n, now])).rows[0] as { cancelled: number };
      if (Number(row.cancelled) > 0) return 'cancelled';
      // A fresh snapshot: a settle that committed while the cancel waited for the row is seen now.
      const done = (await run('isFinished', [queue, n])).rows[0] as { finished: boolean };
      return done.finished ? 'finished' : 'not-found';
    },

    async progress(queue, updates, now): Promise<boolean[]> {
      if (updates.length === 0) return [];
      const byId: Record<string, [string, string]> = {};
      const ids: number[] = [];
      for (const u of updates) {
        const n = toId(u.id);
        if (n === undefined) continue;
        byId[u.id] = [u.token, u.progress];
        ids.push(n);
      }
      ids.sort((a, b) => a - b);
      const res = await run('progress', [queue, ids, JSON.stringify(byId), now]);
      const ok = new Set((res.rows as { id: number }[]).map((r) => String(r.id)));
      return updates.map((u) => ok.has(u.id));
    },

    async list(queue, query, now): Promise<TaskPage> {
      const filter = query.state ?? 'all';
      const res = await run(`${query.order === 'newest' ? 'listNewest' : 'list'}_${filter}`, [
        queue,
        now,
        listBound(query),
        query.key ?? null,
        query.limit + 1,
        query.group ?? null,
      ]);
      const rows = res.rows as TaskRow[];
      const items = rows.slice(0, query.limit).map((r) => record(r, now));
      return rows.length > query.limit ? { items, next: items[items.length - 1]!.id } : { items };
    },

    async prune(queue, retention, now, batch): Promise<number> {
      let deleted = 0;
      for (const state of ['succeeded', 'cancelled', 'dead'] as const) {
        if (deleted >= batch) break;
        const { cut, keep } = pruneParams(retention, state, now);
        const res = await run(state === 'dead' ? 'pruneDead' : 'pruneDone', [queue, state, cut, keep, batch - deleted]);
        deleted += res.rowCount ?? 0;
      }
      return deleted;
    },
  };
}

/** The channel on which a schema's cancellations are announced (`<id>:<queue>`). */
export function cancelChannelOf(channel: string): string {
  return `${channel}_cancel`;
}

/** True when the plain claim answered that the queue has groups (a single row whose id is null). */
function isGroupedMarker(rows: readonly ClaimedRow[]): boolean {
  return rows.length > 0 && rows[rows.length - 1]!.id === null;
}

/** An id as the bigint column wants it, or undefined when it cannot be one of ours. */
function toId(id: string): number | undefined {
  return isTaskId(id) ? Number(id) : undefined;
}
