import type { SagaRecord } from '../sagaStore.js';
import {
  type ClaimedTask,
  type ClaimRequest,
  type QueueStats,
  type Retention,
  stateAt,
  type TaskQuery,
  type TaskRecord,
} from '../store.js';

/** A task row as the SQL stores (SQLite, Postgres) keep it. */
export interface TaskRow {
  id: number;
  queue: string;
  state: 'pending' | 'active' | 'retrying' | 'dead' | 'succeeded' | 'cancelled';
  key: string | null;
  /** Lower runs first (issue #15). */
  priority: number;
  grp: string | null;
  payload: string;
  attempt: number;
  run_at: number;
  lease_token: string | null;
  lease_until: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  /** `NewTask.trace` (a column added by a later migration). */
  trace_context?: string | null;
  started_at?: number | null;
  progress?: string | null;
  /** History rows (succeeded, cancelled) only. */
  result?: string | null;
  finished_at?: number | null;
}

/** The SQL condition of a live task: one that holds its dedup key. */
export const LIVE = `state IN ('pending', 'active', 'retrying')`;

/** An unlimited count (`maxAttempts`, a `dead()` limit) as a bound parameter: both stores' integers are 64-bit. */
export const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** The id bound of a `list` page: `after`, or where the first page starts (0 going up, past every id going down). */
export function listBound(query: Pick<TaskQuery, 'after' | 'order'>): number {
  if (query.after !== undefined) return Number(query.after);
  return query.order === 'newest' ? UNLIMITED : 0;
}

/** `QueueStats` from per-state counts, where `later` counts the tasks not due yet: a retrying task past its backoff is pending. */
export function queueStats(
  byState: { state: TaskRow['state']; later: number; n: number }[],
  succeeded: number,
  cancelled: number,
): QueueStats {
  const out: QueueStats = { pending: 0, active: 0, retrying: 0, succeeded, dead: 0, cancelled };
  for (const r of byState) {
    // Number(): Postgres counts are bigint, which pg hands over as text.
    if (r.state === 'retrying') {
      out.retrying += Number(r.later);
      out.pending += Number(r.n) - Number(r.later);
    } else if (r.state !== 'succeeded' && r.state !== 'cancelled') out[r.state] += Number(r.n);
  }
  return out;
}

/** `nextDueAt` from the earliest due `run_at` and the earliest `lease_until` (each null when there is none). */
export function nextDue(due: number | null, lease: number | null): number | undefined {
  if (due === null) return lease ?? undefined;
  return lease === null ? due : Math.min(due, lease);
}

/** A task row as a `TaskRecord` at `now` (its state as `stateAt` reads it). */
export function taskRecord(r: TaskRow, now: number): TaskRecord {
  return {
    id: String(r.id),
    queue: r.queue,
    state: stateAt(r.state, r.run_at, now),
    payload: r.payload,
    ...(r.key !== null && { key: r.key }),
    ...(Number(r.priority) !== 0 && { priority: Number(r.priority) }),
    ...(r.grp != null && { group: r.grp }),
    attempt: r.attempt,
    runAt: Number(r.run_at),
    ...(r.lease_until != null && { leaseUntil: Number(r.lease_until) }),
    ...(r.last_error !== null && { lastError: r.last_error }),
    ...(r.result != null && { result: r.result }),
    ...(r.progress != null && { progress: r.progress }),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    ...(r.started_at != null && { startedAt: Number(r.started_at) }),
    ...(r.finished_at != null
      ? { finishedAt: Number(r.finished_at) }
      : r.state === 'dead' && { finishedAt: Number(r.updated_at) }),
  };
}

/** A time bound as a bound parameter: `-Infinity` (keep for ever) becomes the smallest safe integer. */
function timeParam(t: number): number {
  return Number.isFinite(t) ? Math.floor(t) : t > 0 ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
}

/** The parameters of one prune statement: finished before `cut` or beyond the newest `keep` go. */
export function pruneParams(retention: Retention, state: keyof Retention, now: number): { cut: number; keep: number } {
  const rule = retention[state];
  return {
    cut: timeParam(now - rule.ageMs),
    keep: Number.isFinite(rule.count) ? rule.count : UNLIMITED,
  };
}

/**
 * The SQL condition of a `list` state filter on columns `state` and `run_at`
 * (`$now` is the named parameter of the read time): as `stateAt` reads it, a
 * retrying task past its backoff is pending.
 */
export function stateFilter(state: string | undefined, now: string): string {
  switch (state) {
    case undefined:
      return 'TRUE';
    case 'pending':
      return `(state = 'pending' OR (state = 'retrying' AND run_at <= ${now}))`;
    case 'retrying':
      return `(state = 'retrying' AND run_at > ${now})`;
    case 'active':
    case 'succeeded':
    case 'dead':
    case 'cancelled':
      return `state = '${state}'`;
    default:
      return 'FALSE';
  }
}

/** The claimer's finished tasks (`ClaimRequest.finished`) as both SQL claims read them: JSON `{id: token}`, null for none. */
export function finishedJson(finished: ClaimRequest['finished']): string | null {
  if (finished === undefined || finished.length === 0) return null;
  return JSON.stringify(Object.fromEntries(finished.map((f) => [f.id, f.token])));
}

/** Rows a claim statement returned, as claimed tasks in claim order (RETURNING does not keep the subquery's order). */
export function claimedTasks(
  rows: (Pick<TaskRow, 'id' | 'payload' | 'attempt' | 'key' | 'run_at' | 'trace_context'> &
    Partial<Pick<TaskRow, 'priority' | 'grp'>>)[],
  token: string,
): ClaimedTask[] {
  // Number(): on a plain pg client (not the store's pool) bigint columns arrive as strings.
  rows.sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0) || a.run_at - b.run_at || a.id - b.id);
  return rows.map((r) => ({
    id: String(r.id),
    payload: r.payload,
    attempt: r.attempt,
    runAt: r.run_at,
    token,
    ...(r.key !== null && { key: r.key }),
    ...(r.trace_context != null && { trace: r.trace_context }),
    ...(r.priority !== undefined &&
      r.priority !== null &&
      Number(r.priority) !== 0 && { priority: Number(r.priority) }),
    ...(r.grp !== undefined && r.grp !== null && { group: r.grp }),
  }));
}

/** A saga row as the SQL stores keep it. */
export interface SagaRow {
  saga: string;
  id: string;
  version: string;
  status: SagaRecord['status'];
  state: string;
  context: string;
  attempt: number;
  not_before: number | null;
  created_at: number;
  updated_at: number;
  /** `SagaRecord.trace` (a column added by a later migration). */
  trace_context?: string | null;
  history?: string | null;
  branches?: string | null;
}

/** A saga row as a `SagaRecord`. */
export function sagaRecord(r: SagaRow): SagaRecord {
  return {
    saga: r.saga,
    id: r.id,
    version: r.version,
    status: r.status,
    state: r.state,
    context: r.context,
    attempt: r.attempt,
    notBefore: r.not_before ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.trace_context != null && { trace: r.trace_context }),
    ...(r.history != null && { history: r.history }),
    ...(r.branches != null && { branches: r.branches }),
  };
}
