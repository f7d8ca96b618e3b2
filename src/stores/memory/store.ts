import {
  type ClaimedTask,
  type EnqueueResult,
  type ExpiredLease,
  type NewTask,
  type Outcome,
  type QueueStats,
  type Store,
  stateAt,
  type TaskRecord,
} from '../store.js';
import { TimeHeap } from './heap.js';
import { memorySagas } from './sagas.js';

interface Row {
  id: number;
  queue: string;
  state: 'pending' | 'active' | 'retrying' | 'dead';
  payload: string;
  key: string | undefined;
  attempt: number;
  runAt: number;
  token: string | undefined;
  leaseUntil: number | undefined;
  lastError: string | undefined;
  createdAt: number;
  updatedAt: number;
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
}

/**
 * The default store: everything lives in this process and nothing survives
 * it. Data belongs to the store object, not to a runtime, so two runtimes
 * given the same instance share queues (tests use that to play a second process).
 */
export function memoryStore(): Store {
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
    attempt: row.attempt,
    runAt: row.runAt,
    ...(row.leaseUntil !== undefined && { leaseUntil: row.leaseUntil }),
    ...(row.lastError !== undefined && { lastError: row.lastError }),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  });

  return {
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
            out.push({ id: String(existing), deduplicated: true });
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
          attempt: 0,
          runAt: t.runAt,
          token: undefined,
          leaseUntil: undefined,
          lastError: undefined,
          createdAt: now,
          updatedAt: now,
        };
        rows.set(id, row);
        if (t.key !== undefined) data.keys.set(t.key, id);
        data.pending++;
        data.ready.push(t.runAt, id);
        out.push({ id: String(id), deduplicated: false });
      }
      return out;
    },

    async claim(queue, { limit, now, leaseUntil, token }): Promise<ClaimedTask[]> {
      const data = q(queue);
      const out: ClaimedTask[] = [];
      while (out.length < limit) {
        const at = data.ready.peekAt();
        if (at === undefined || at > now) break;
        const row = rows.get(data.ready.pop()!);
        if (!row || (row.state !== 'pending' && row.state !== 'retrying')) continue;
        if (row.state === 'retrying') data.retrying.delete(row);
        else data.pending--;
        row.state = 'active';
        row.attempt++;
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
        });
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
            rows.delete(row.id);
            if (row.key !== undefined) data.keys.delete(row.key);
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
            row.state = 'dead';
            row.lastError = o.error;
            if (row.key !== undefined) data.keys.delete(row.key);
            data.dead.set(row.id, row);
            break;
          case 'released':
            row.attempt = Math.max(0, row.attempt - 1);
            toPending(data, row, o.runAt, now);
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
          row.state = 'dead';
          row.lastError = `lease expired on attempt ${row.attempt}`;
          row.updatedAt = now;
          if (row.key !== undefined) data.keys.delete(row.key);
          data.dead.set(row.id, row);
          out.push({ id: String(row.id), state: 'dead' });
        }
      }
      return out;
    },

    async nextDueAt(queue): Promise<number | undefined> {
      const data = q(queue);
      let next = data.ready.peekAt();
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
      row.attempt = 0;
      row.lastError = undefined;
      if (row.key !== undefined) data.keys.set(row.key, row.id);
      toPending(data, row, now, now);
      return 'redriven';
    },

    async get(queue, id, now): Promise<TaskRecord | undefined> {
      const row = rows.get(Number(id));
      if (!row || row.queue !== queue) return undefined;
      return record(row, now);
    },
  };
}
