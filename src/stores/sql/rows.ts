import type { SagaRecord } from '../sagaStore.js';
import { type ClaimedTask, type QueueStats, stateAt, type TaskRecord } from '../store.js';

/** A task row as the SQL stores (SQLite, Postgres) keep it. */
export interface TaskRow {
  id: number;
  queue: string;
  state: 'pending' | 'active' | 'retrying' | 'dead';
  key: string | null;
  payload: string;
  attempt: number;
  run_at: number;
  lease_token: string | null;
  lease_until: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

/** The SQL condition of a live task: one that holds its dedup key. */
export const LIVE = `state IN ('pending', 'active', 'retrying')`;

/** An unlimited count (`maxAttempts`, a `dead()` limit) as a bound parameter: both stores' integers are 64-bit. */
export const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** `QueueStats` from per-state counts, where `later` counts the tasks not due yet: a retrying task past its backoff is pending. */
export function queueStats(
  byState: { state: TaskRow['state']; later: number; n: number }[],
  succeeded: number,
): QueueStats {
  const out: QueueStats = { pending: 0, active: 0, retrying: 0, succeeded, dead: 0 };
  for (const r of byState) {
    if (r.state === 'retrying') {
      out.retrying += r.later;
      out.pending += r.n - r.later;
    } else out[r.state] += r.n;
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
    attempt: r.attempt,
    runAt: r.run_at,
    ...(r.lease_until !== null && { leaseUntil: r.lease_until }),
    ...(r.last_error !== null && { lastError: r.last_error }),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Rows a claim statement returned, as claimed tasks in claim order (RETURNING does not keep the subquery's order). */
export function claimedTasks(
  rows: Pick<TaskRow, 'id' | 'payload' | 'attempt' | 'key' | 'run_at'>[],
  token: string,
): ClaimedTask[] {
  rows.sort((a, b) => a.run_at - b.run_at || a.id - b.id);
  return rows.map((r) => ({
    id: String(r.id),
    payload: r.payload,
    attempt: r.attempt,
    runAt: r.run_at,
    token,
    ...(r.key !== null && { key: r.key }),
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
  };
}
