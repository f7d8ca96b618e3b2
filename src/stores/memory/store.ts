import {
  type CancelResult,
  type ClaimedTask,
  type DeadTaskRemoval,
  type DurableBus,
  type EnqueueResult,
  type ExpiredLease,
  type NewTask,
  type Outcome,
  type QueueStats,
  type Schedules,
  type Store,
  stateAt,
  type TaskPage,
  type TaskRecord,
  type WatchedDurableBus,
} from '../store.js';
import { memoryDurableBus } from './durableBus.js';
import { TimeHeap } from './heap.js';
import { FinishedList, matches } from './history.js';
import { memorySagas } from './sagas.js';
import { memorySchedules } from './schedules.js';
import { Turns } from './turns.js';

interface Row {
  id: number;
  queue: string;
  state: 'pending' | 'active' | 'retrying' | 'dead' | 'succeeded' | 'cancelled';
  payload: string;
  key: string | undefined;
  priority: number;
  group: string | undefined;
  attempt: number;
  runAt: number;
  token: string | undefined;
  leaseUntil: number | undefined;
  lastError: string | undefined;
  createdAt: number;
  updatedAt: number;
  /** `NewTask.trace`, handed back with each claim. */
  trace: string | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  result: string | undefined;
  progress: string | undefined;
}

interface QueueData {
  /** Pending and retrying tasks by (runAt, id): every entry is claimable once due. */
  ready: TimeHeap;
  active: Set<Row>;
  retrying: Set<Row>;
  dead: Map<number, Row>;
  /** Key → id of the live task holding it. */
  keys: Map<string, number>;
  pending: number;
  succeeded: number;
  cancelled: number;
  /** Finished tasks in the order they finished, per state: the pruner takes from the front. */
  finished: { succeeded: FinishedList; dead: FinishedList; cancelled: FinishedList };
  /** Every id of the queue, ascending (ids only grow): `list` pages through it by binary search. */
  ids: number[];
  /** Ids in `ids` whose row is gone (pruned); compacted when they are half of it. */
  gone: number;
  /** Claim order beyond the time heap: priorities, groups, limits. */
  turns: Turns;
}

/**
 * The default store: everything lives in this process and nothing survives
 * it. Data belongs to the store object, not to a runtime, so two runtimes
 * given the same instance share queues (tests use that to play a second process).
 */
export function memoryStore(): Store & DeadTaskRemoval & Schedules & DurableBus & WatchedDurableBus {
  const rows = new Map<number, Row>();
  const queues = new Map<string, QueueData>();
  let nextId = 1;

  const q = (name: string): QueueData => {
    let data = queues.get(name);
    if (!data) {
      data = {
        ready: new TimeHeap(),
        active: new Set(),
        retrying: new Set(),
        dead: new Map(),
        keys: new Map(),
        pending: 0,
        succeeded: 0,
        cancelled: 0,
        finished: { succeeded: new FinishedList(), dead: new FinishedList(), cancelled: new FinishedList() },
        ids: [],
        gone: 0,
        turns: new Turns(),
      };
      queues.set(name, data);
    }
    return data;
  };

  const held = (queue: string, id: string, token: string): Row | undefined => {
    const row = rows.get(Number(id));
    if (!row || row.queue !== queue || row.state !== 'active' || row.token !== token) return undefined;
    return row;
  };

  const toPending = (data: QueueData, row: Row, runAt: number, now: number) => {
    row.state = 'pending';
    row.runAt = runAt;
    row.token = undefined;
    row.leaseUntil = undefined;
    row.updatedAt = now;
    data.pending++;
    data.ready.push(runAt, row.id);
  };

  const leaveActive = (data: QueueData, row: Row) => {
    data.active.delete(row);
    row.token = undefined;
    row.leaseUntil = undefined;
  };

  const record = (row: Row, now: number): TaskRecord => ({
    id: String(row.id),
    queue: row.queue,
    state: stateAt(row.state, row.runAt, now),
    payload: row.payload,
    ...(row.key !== undefined && { key: row.key }),
    ...(row.priority !== 0 && { priority: row.priority }),
    ...(row.group !== undefined && { group: row.group }),
    attempt: row.attempt,
    runAt: row.runAt,
    ...(row.leaseUntil !== undefined && { leaseUntil: row.leaseUntil }),
    ...(row.lastError !== undefined && { lastError: row.lastError }),
    ...(row.result !== undefined && { result: row.result }),
    ...(row.progress !== undefined && { progress: row.progress }),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    ...(row.startedAt !== undefined && { startedAt: row.startedAt }),
    ...(row.finishedAt !== undefined && { finishedAt: row.finishedAt }),
  });

  /** Ends a task in a finished state and queues it for the pruner. */
  const finish = (data: QueueData, row: Row, state: 'succeeded' | 'dead' | 'cancelled', now: number) => {
    row.state = state;
    row.finishedAt = now;
    row.updatedAt = now;
    if (row.key !== undefined && data.keys.get(row.key) === row.id) data.keys.delete(row.key);
    if (state === 'dead') data.dead.set(row.id, row);
    data.finished[state].push(row.id);
  };

  /** Deletes a finished row for good (the pruner). */
  const forget = (data: QueueData, row: Row) => {
    rows.delete(row.id);
    if (row.state === 'dead') data.dead.delete(row.id);
    if (++data.gone > 1024 && data.gone * 2 > data.ids.length) {
      data.ids = data.ids.filter((id) => rows.has(id));
      data.gone = 0;
    }
  };

  const store: Store & DeadTaskRemoval = {
    ...memorySagas(),
    kind: 'memory',
    async open() {},
    async close() {},

    async enqueue(queue: string, tasks: readonly NewTask[], now: number): Promise<EnqueueResult[]> {
      const data = q(queue);
      const out: EnqueueResult[] = [];
      for (const t of tasks) {
        if (t.key !== undefined) {
          const existing = data.keys.get(t.key);
          if (existing !== undefined) {
            const holder = rows.get(existing)!;
            if (t.replace && holder.state === 'pending') {
              holder.payload = t.payload;
              holder.updatedAt = now;
              out.push({ id: String(existing), deduplicated: false, replaced: true });
            } else out.push({ id: String(existing), deduplicated: true });
            continue;
          }
        }
        const id = nextId++;
        const row: Row = {
          id,
          queue,
          state: 'pending',
          payload: t.payload,
          key: t.key,
          priority: t.priority ?? 0,
          group: t.group,
          attempt: 0,
          runAt: t.runAt,
          token: undefined,
          leaseUntil: undefined,
          lastError: undefined,
          createdAt: now,
          updatedAt: now,
          trace: t.trace,
          startedAt: undefined,
          finishedAt: undefined,
          result: undefined,
          progress: undefined,
        };
        rows.set(id, row);
        data.ids.push(id);
        if (t.key !== undefined) data.keys.set(t.key, id);
        data.pending++;
        data.turns.note(row);
        data.ready.push(t.runAt, id);
        out.push({ id: String(id), deduplicated: false });
      }
      return out;
    },

    async claim(queue, { limit, now, leaseUntil, token, limits, finished }): Promise<ClaimedTask[]> {
      const data = q(queue);
      const out: ClaimedTask[] = [];
      const take = (row: Row) => {
        if (row.state === 'retrying') data.retrying.delete(row);
        else data.pending--;
        row.state = 'active';
        row.attempt++;
        row.startedAt ??= now;
        row.token = token;
        row.leaseUntil = leaseUntil;
        row.updatedAt = now;
        data.active.add(row);
        out.push({
          id: String(row.id),
          payload: row.payload,
          attempt: row.attempt,
          runAt: row.runAt,
          token,
          ...(row.key !== undefined && { key: row.key }),
          ...(row.trace !== undefined && { trace: row.trace }),
          ...(row.priority !== 0 && { priority: row.priority }),
          ...(row.group !== undefined && { group: row.group }),
        });
      };
      if (limits !== undefined || data.turns.sorted) {
        // Priorities, groups or limits: the turns decide (one synchronous call, so nothing interleaves).
        // Only a fleet limit reads the count: skip the filter (and its array) for every other claim.
        const running =
          limits?.globalConcurrency === undefined
            ? data.active.size
            : data.active.size - (finished ?? []).filter((f) => held(queue, f.id, f.token)).length;
        data.turns.claim(data.ready, rows, limit, now, limits, running, take as (row: unknown) => void);
        return out;
      }
      while (out.length < limit) {
        const at = data.ready.peekAt();
        if (at === undefined || at > now) break;
        const row = rows.get(data.ready.pop()!);
        if (!row || (row.state !== 'pending' && row.state !== 'retrying')) continue;
        take(row);
      }
      return out;
    },

    async renew(queue, leases, leaseUntil, now): Promise<string[]> {
      const lost: string[] = [];
      for (const { id, token } of leases) {
        const row = held(queue, id, token);
        if (!row) {
          lost.push(id);
          continue;
        }
        row.leaseUntil = leaseUntil;
        row.updatedAt = now;
      }
      return lost;
    },

    async settle(queue, outcomes: readonly Outcome[], now): Promise<boolean[]> {
      const data = q(queue);
      return outcomes.map((o) => {
        const row = held(queue, o.id, o.token);
        if (!row) return false;
        leaveActive(data, row);
        row.updatedAt = now;
        switch (o.kind) {
          case 'succeeded':
            row.result = o.result;
            finish(data, row, 'succeeded', now);
            data.succeeded++;
            break;
          case 'retrying':
            row.state = 'retrying';
            row.runAt = o.runAt;
            row.lastError = o.error;
            data.retrying.add(row);
            data.ready.push(o.runAt, row.id);
            break;
          case 'dead':
            row.lastError = o.error;
            finish(data, row, 'dead', now);
            break;
          case 'released':
            row.attempt = Math.max(0, row.attempt - 1);
            toPending(data, row, o.runAt, now);
            break;
          case 'deferred':
            // Retrying (not pending), so it holds its group's slot; the attempt is given back.
            row.attempt = Math.max(0, row.attempt - 1);
            row.state = 'retrying';
            row.runAt = o.runAt;
            data.retrying.add(row);
            data.ready.push(o.runAt, row.id);
            break;
        }
        return true;
      });
    },

    async expireLeases(queue, now, maxAttempts): Promise<ExpiredLease[]> {
      const data = q(queue);
      const out: ExpiredLease[] = [];
      for (const row of [...data.active]) {
        if (row.leaseUntil === undefined || row.leaseUntil > now) continue;
        leaveActive(data, row);
        if (row.attempt < maxAttempts) {
          toPending(data, row, now, now);
          out.push({ id: String(row.id), state: 'pending' });
        } else {
          row.lastError = `lease expired on attempt ${row.attempt}`;
          finish(data, row, 'dead', now);
          out.push({ id: String(row.id), state: 'dead' });
        }
      }
      return out;
    },

    async nextDueAt(queue): Promise<number | undefined> {
      const data = q(queue);
      let next = data.ready.peekAt();
      const held = data.turns.dueAt();
      if (held !== undefined && (next === undefined || held < next)) next = held;
      for (const row of data.active) {
        if (row.leaseUntil !== undefined && (next === undefined || row.leaseUntil < next)) next = row.leaseUntil;
      }
      return next;
    },

    async stats(queue, now): Promise<QueueStats> {
      const data = q(queue);
      let waiting = 0;
      for (const row of data.retrying) if (row.runAt > now) waiting++;
      return {
        pending: data.pending + data.retrying.size - waiting,
        active: data.active.size,
        retrying: waiting,
        succeeded: data.succeeded,
        dead: data.dead.size,
        cancelled: data.cancelled,
      };
    },

    async dead(queue, limit = Number.POSITIVE_INFINITY): Promise<TaskRecord[]> {
      const out: TaskRecord[] = [];
      // Oldest (lowest id) first, like the durable stores.
      const rows = [...q(queue).dead.values()].sort((a, b) => a.id - b.id);
      for (const row of rows) {
        if (out.length >= limit) break;
        out.push(record(row, 0));
      }
      return out;
    },

    async redrive(queue, id, now) {
      const data = q(queue);
      const row = data.dead.get(Number(id));
      if (!row) return 'not-found';
      if (row.key !== undefined && data.keys.has(row.key)) return 'deduplicated';
      data.dead.delete(row.id);
      data.finished.dead.remove(row.id);
      row.attempt = 0;
      row.lastError = undefined;
      row.finishedAt = undefined;
      if (row.key !== undefined) data.keys.set(row.key, row.id);
      toPending(data, row, now, now);
      return 'redriven';
    },

    /** Operator action (issue #19): deletes the listed dead tasks of `queue`. */
    async deleteDead(queue, ids) {
      const data = q(queue);
      const deleted: string[] = [];
      for (const n of new Set(ids.map(Number))) {
        if (!data.dead.delete(n)) continue;
        rows.delete(n);
        deleted.push(String(n));
      }
      return deleted.sort((a, b) => Number(a) - Number(b));
    },

    async get(queue, id, now): Promise<TaskRecord | undefined> {
      const row = rows.get(Number(id));
      if (!row || row.queue !== queue) return undefined;
      return record(row, now);
    },

    async cancel(queue, id, now): Promise<CancelResult> {
      const data = q(queue);
      const row = rows.get(Number(id));
      if (!row || row.queue !== queue) return 'not-found';
      switch (row.state) {
        case 'pending':
          data.pending--;
          break;
        case 'retrying':
          data.retrying.delete(row);
          break;
        case 'active':
          leaveActive(data, row);
          break;
        default:
          return 'finished';
      }
      // A pending or retrying row stays in the ready heap: the claim skips it (it is no longer claimable).
      finish(data, row, 'cancelled', now);
      data.cancelled++;
      return 'cancelled';
    },

    async progress(queue, updates, now): Promise<boolean[]> {
      return updates.map((u) => {
        const row = held(queue, u.id, u.token);
        if (!row) return false;
        row.progress = u.progress;
        row.updatedAt = now;
        return true;
      });
    },

    async list(queue, query, now): Promise<TaskPage> {
      const data = q(queue);
      const items: TaskRecord[] = [];
      const after = query.after === undefined ? 0 : Number(query.after);
      // The first id above `after`: a binary search, so a page costs its size, not its offset.
      let lo = 0;
      let hi = data.ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (data.ids[mid]! <= after) lo = mid + 1;
        else hi = mid;
      }
      // Newest first walks down from the last id below `after` (`lo` is the first id above it, or past it).
      const newest = query.order === 'newest';
      const below = query.after === undefined ? data.ids.length : data.ids[lo - 1] === after ? lo - 1 : lo;
      const start = newest ? below - 1 : lo;
      for (let i = start; newest ? i >= 0 : i < data.ids.length; i += newest ? -1 : 1) {
        const row = rows.get(data.ids[i]!);
        if (!row) continue;
        const rec = record(row, now);
        if (!matches(rec, query)) continue;
        if (items.length === query.limit) return { items, next: items[items.length - 1]!.id };
        items.push(rec);
      }
      return { items };
    },

    async prune(queue, retention, now, batch): Promise<number> {
      const data = q(queue);
      let deleted = 0;
      for (const state of ['succeeded', 'dead', 'cancelled'] as const) {
        const list = data.finished[state];
        const keep = retention[state];
        while (deleted < batch) {
          const id = list.peek();
          if (id === undefined) break;
          const row = rows.get(id);
          if (!row || row.finishedAt === undefined) {
            list.shift();
            continue;
          }
          if (list.size <= keep.count && now - row.finishedAt < keep.ageMs) break;
          list.shift();
          forget(data, row);
          deleted++;
        }
      }
      return deleted;
    },
  };
  // Schedules (issue #15) and durable bus subscriptions (issue #16.5) enqueue through this store's own enqueue.
  return Object.assign(
    store,
    memorySchedules((queue, tasks, now) => store.enqueue(queue, tasks, now)),
    memoryDurableBus(store.enqueue),
  );
}
