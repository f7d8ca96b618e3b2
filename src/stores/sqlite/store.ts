import Database from 'better-sqlite3';
import { invalidOptions, KeelError } from '../../core/errors.js';
import { describeValue, OptionReader } from '../../core/options.js';
import { withDriverErrors } from '../driverErrors.js';
import {
  claimedTasks,
  LIVE,
  listBound,
  nextDue,
  pruneParams,
  queueStats,
  taskRecord as record,
  stateFilter,
  type TaskRow,
  UNLIMITED,
} from '../sql/rows.js';
import type {
  CancelResult,
  ClaimedTask,
  ClaimRequest,
  DeadTaskRemoval,
  EnqueueResult,
  ExpiredLease,
  NewTask,
  Outcome,
  QueuePauses,
  QueueStats,
  Store,
  TaskPage,
  TaskRecord,
} from '../store.js';
import { sqliteDurableBus } from './durableBus.js';
import { sqliteMigrations } from './migrations.js';
import { sqliteOperator } from './operator.js';
import { sqliteSagas } from './sagas.js';
import { sqliteSchedules } from './schedules.js';
import { CLAIMED, prepareTurns } from './turns.js';

/** Options of `sqliteStore`. */
export interface SqliteStoreOptions {
  /** The database file (created when missing); `:memory:` for a throwaway database. */
  path: string;
  /**
   * `NORMAL` (default) survives a crash of the process, which is what WAL mode
   * guarantees without an fsync per commit; `FULL` also survives power loss.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for another connection's lock; default 5000. */
  busyTimeoutMs?: number;
}

const HELD = `id = @id AND queue = @queue AND state = 'active' AND lease_token = @token`;

/**
 * A durable store in one SQLite file (better-sqlite3, WAL). Safe for one
 * process with many concurrent workers: better-sqlite3 is synchronous, so each
 * method is one transaction that no other call in the process interleaves with.
 * Write transactions begin IMMEDIATE, so a second connection (another runtime
 * or a tool) waits on `busy_timeout` instead of failing on a lock upgrade.
 */
export function sqliteStore(options: SqliteStoreOptions): Store & DeadTaskRemoval & QueuePauses {
  options = checkOptions(options);
  let db: Database.Database | undefined;
  let s: ReturnType<typeof prepare> | undefined;

  const notOpen = () =>
    new KeelError('STORE_UNAVAILABLE', `sqliteStore('${options.path}') is not open; call rt.start() first`);
  const open = (): ReturnType<typeof prepare> => {
    if (!s) throw notOpen();
    return s;
  };

  // A busy database (SQLITE_BUSY past busyTimeoutMs) reaches callers as STORE_UNAVAILABLE, never a raw SqliteError.
  return withDriverErrors(`sqliteStore('${options.path}')`, {
    ...sqliteSagas(() => {
      if (!db) throw notOpen();
      return db;
    }),
    // Schedules (issue #15): the slot's compare-and-set shares a transaction with the store's enqueue.
    ...sqliteSchedules(() => {
      if (!db || !s) throw notOpen();
      return { db, enqueue: s.enqueue };
    }),
    // Durable bus subscriptions (issue #16.5): their events become tasks through this store's enqueue.
    ...sqliteDurableBus(
      () => {
        if (!db) throw notOpen();
        return db;
      },
      () => open().enqueue,
    ),
    // Operator actions (issue #19): deleting dead tasks, the pause flag every process on the file obeys.
    ...sqliteOperator(() => {
      if (!db) throw notOpen();
      return db;
    }),
    kind: 'sqlite',

    async open() {
      if (db) return;
      try {
        const d = new Database(options.path);
        try {
          d.pragma('journal_mode = WAL');
          d.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
          d.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
          migrate(d, options.path);
          s = prepare(d);
          db = d;
        } catch (error) {
          d.close();
          throw error;
        }
      } catch (error) {
        if (error instanceof KeelError) throw error;
        throw new KeelError('STORE_UNAVAILABLE', `sqliteStore('${options.path}'): ${(error as Error).message}`, {
          cause: error,
        });
      }
    },

    async close() {
      const d = db;
      db = undefined;
      s = undefined;
      d?.close();
    },

    async enqueue(queue, tasks, now): Promise<EnqueueResult[]> {
      return open().enqueue.immediate(queue, tasks, now);
    },

    async claim(queue, request): Promise<ClaimedTask[]> {
      return claimedTasks(open().claim.immediate(queue, request) as Parameters<typeof claimedTasks>[0], request.token);
    },

    async renew(queue, leases, leaseUntil, now): Promise<string[]> {
      return open().renew.immediate(queue, leases, leaseUntil, now);
    },

    async settle(queue, outcomes, now): Promise<boolean[]> {
      return open().settle.immediate(queue, outcomes, now);
    },

    async expireLeases(queue, now, maxAttempts): Promise<ExpiredLease[]> {
      const max = Number.isFinite(maxAttempts) ? maxAttempts : UNLIMITED;
      const rows = open().expire.all({ queue, now, max }) as { id: number; state: 'pending' | 'dead' }[];
      return rows.map((r) => ({ id: String(r.id), state: r.state }));
    },

    async nextDueAt(queue): Promise<number | undefined> {
      const st = open();
      return nextDue(
        (st.nextRun.get(queue) as { t: number | null }).t,
        (st.nextLease.get(queue) as { t: number | null }).t,
      );
    },

    async stats(queue, now): Promise<QueueStats> {
      const st = open();
      const counts = st.succeeded.get(queue) as { n: number; c: number } | undefined;
      return queueStats(
        st.stats.all({ queue, now }) as Parameters<typeof queueStats>[0],
        counts?.n ?? 0,
        counts?.c ?? 0,
      );
    },

    async dead(queue, limit = UNLIMITED): Promise<TaskRecord[]> {
      return (open().dead.all(queue, limit) as TaskRow[]).map((r) => record(r, 0));
    },

    async redrive(queue, id, now) {
      const n = Number(id);
      if (!Number.isSafeInteger(n)) return 'not-found';
      return open().redrive.immediate(queue, n, now);
    },

    async get(queue, id, now): Promise<TaskRecord | undefined> {
      const n = Number(id);
      if (!Number.isSafeInteger(n)) return undefined;
      const st = open();
      const row = (st.get.get(n, queue) ?? st.getDone.get(n, queue)) as TaskRow | undefined;
      return row && record(row, now);
    },

    async cancel(queue, id, now): Promise<CancelResult> {
      const n = Number(id);
      if (!Number.isSafeInteger(n)) return 'not-found';
      return open().cancel.immediate(queue, n, now);
    },

    async progress(queue, updates, now): Promise<boolean[]> {
      return open().progress.immediate(queue, updates, now);
    },

    async list(queue, query, now): Promise<TaskPage> {
      const rows = open()
        .list(query.state, query.order === 'newest')
        .all({
          queue,
          now,
          after: listBound(query),
          key: query.key ?? null,
          grp: query.group ?? null,
          n: query.limit + 1,
        }) as TaskRow[];
      const items = rows.slice(0, query.limit).map((r) => record(r, now));
      return rows.length > query.limit ? { items, next: items[items.length - 1]!.id } : { items };
    },

    async prune(queue, retention, now, batch): Promise<number> {
      const st = open();
      let deleted = 0;
      for (const state of ['succeeded', 'cancelled', 'dead'] as const) {
        if (deleted >= batch) break;
        const { cut, keep } = pruneParams(retention, state, now);
        const stmt = state === 'dead' ? st.pruneDead : st.pruneDone;
        deleted += stmt.run({ queue, state, cut, keep, n: batch - deleted }).changes;
      }
      return deleted;
    },
  });
}

function migrate(db: Database.Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > sqliteMigrations.length) {
    throw new KeelError(
      'STORE_UNAVAILABLE',
      `sqliteStore('${path}'): schema version ${version} is newer than this keel knows (${sqliteMigrations.length})`,
    );
  }
  for (let v = version; v < sqliteMigrations.length; v++) {
    db.transaction(() => {
      db.exec(sqliteMigrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

/** Prepared statements and the transactions built from them, once per open. */
function prepare(db: Database.Database) {
  const insert = db.prepare(
    `INSERT INTO keel_tasks (queue, state, key, payload, attempt, run_at, created_at, updated_at, trace_context,
       priority, grp)
     VALUES (@queue, 'pending', @key, @payload, 0, @runAt, @now, @now, @trace, @priority, @grp)
     ON CONFLICT (queue, key) WHERE key IS NOT NULL AND ${LIVE} DO NOTHING
     RETURNING id`,
  );
  const liveKey = db.prepare(`SELECT id FROM keel_tasks WHERE queue = ? AND key = ? AND ${LIVE}`);
  const renewOne = db.prepare(`UPDATE keel_tasks SET lease_until = @leaseUntil, updated_at = @now WHERE ${HELD}`);
  // A finished task moves to the history table: the live table (and the claim's index) stays small.
  const keep = (state: 'succeeded' | 'cancelled', where: string) =>
    db.prepare(
      `INSERT INTO keel_task_history (id, queue, state, key, payload, result, last_error, progress, attempt, run_at,
         created_at, started_at, finished_at, priority, grp)
       SELECT id, queue, '${state}', key, payload, @result, last_error, progress, attempt, run_at,
         created_at, started_at, @now, priority, grp
       FROM keel_tasks WHERE ${where}`,
    );
  const keepSucceeded = keep('succeeded', HELD);
  const succeed = db.prepare(`DELETE FROM keel_tasks WHERE ${HELD}`);
  const count = db.prepare(
    `INSERT INTO keel_queues (name, succeeded) VALUES (?, ?)
     ON CONFLICT (name) DO UPDATE SET succeeded = succeeded + excluded.succeeded`,
  );
  const liveRow = db.prepare(`SELECT state FROM keel_tasks WHERE id = ? AND queue = ?`);
  const keepCancelled = keep('cancelled', `id = @id AND queue = @queue AND ${LIVE}`);
  const dropCancelled = db.prepare(`DELETE FROM keel_tasks WHERE id = @id AND queue = @queue AND ${LIVE}`);
  const countCancel = db.prepare(
    `INSERT INTO keel_queues (name, cancelled) VALUES (?, 1)
     ON CONFLICT (name) DO UPDATE SET cancelled = cancelled + 1`,
  );
  const isDone = db.prepare(`SELECT 1 FROM keel_task_history WHERE id = ? AND queue = ?`);
  const setProgress = db.prepare(`UPDATE keel_tasks SET progress = @progress, updated_at = @now WHERE ${HELD}`);
  const replacePending = db.prepare(
    `UPDATE keel_tasks SET payload = @payload, updated_at = @now WHERE id = @id AND state = 'pending'`,
  );
  // Keyset pagination over both tables, one prepared statement per state filter.
  const lists = new Map<string, Database.Statement>();
  const columns = (table: 'live' | 'done') =>
    table === 'live'
      ? `id, queue, state, key, payload, attempt, run_at, lease_until, last_error, NULL AS result, progress,
         created_at, updated_at, started_at, NULL AS finished_at, priority, grp`
      : `id, queue, state, key, payload, attempt, run_at, NULL AS lease_until, last_error, result, progress,
         created_at, finished_at AS updated_at, started_at, finished_at, priority, grp`;
  const list = (state: string | undefined, newest: boolean): Database.Statement => {
    const name = `${state ?? 'all'}/${newest ? 'newest' : 'oldest'}`;
    let st = lists.get(name);
    if (!st) {
      const where = `queue = @queue AND id ${newest ? '<' : '>'} @after AND (@key IS NULL OR key = @key) AND (@grp IS NULL OR grp = @grp)
        AND ${stateFilter(state, '@now')}`;
      const live =
        state === 'succeeded' || state === 'cancelled'
          ? undefined
          : `SELECT ${columns('live')} FROM keel_tasks WHERE ${where}`;
      const done =
        state === undefined || state === 'succeeded' || state === 'cancelled'
          ? `SELECT ${columns('done')} FROM keel_task_history WHERE ${where}`
          : undefined;
      const union = [live, done].filter((x) => x !== undefined).join(' UNION ALL ');
      st = db.prepare(`SELECT * FROM (${union}) ORDER BY id${newest ? ' DESC' : ''} LIMIT @n`);
      lists.set(name, st);
    }
    return st;
  };
  // Retention: beyond the newest @keep of the state (by id), or finished before @cut; @n at a time.
  const pruneOf = (table: string, finished: string) => {
    // Dead tasks live in keel_tasks: the literal state lets SQLite use its partial index keel_tasks_dead.
    const state = table === 'keel_tasks' ? `state = 'dead' AND @state = 'dead'` : 'state = @state';
    return db.prepare(
      `DELETE FROM ${table} WHERE id IN (
         SELECT id FROM ${table} WHERE queue = @queue AND ${state}
           AND (${finished} <= @cut OR id <= coalesce((
             SELECT id FROM ${table} WHERE queue = @queue AND ${state} ORDER BY id DESC LIMIT 1 OFFSET @keep), 0))
         ORDER BY id LIMIT @n)`,
    );
  };
  const retry = db.prepare(
    `UPDATE keel_tasks SET state = 'retrying', run_at = @runAt, last_error = @error,
       lease_token = NULL, lease_until = NULL, updated_at = @now WHERE ${HELD}`,
  );
  const bury = db.prepare(
    `UPDATE keel_tasks SET state = 'dead', last_error = @error,
       lease_token = NULL, lease_until = NULL, updated_at = @now WHERE ${HELD}`,
  );
  const release = db.prepare(
    `UPDATE keel_tasks SET state = 'pending', attempt = max(attempt - 1, 0), run_at = @runAt,
       lease_token = NULL, lease_until = NULL, updated_at = @now WHERE ${HELD}`,
  );
  // A breaker deferral: retrying, so it holds its group's slot; the attempt is given back, the last error kept.
  const defer = db.prepare(
    `UPDATE keel_tasks SET state = 'retrying', attempt = max(attempt - 1, 0), run_at = @runAt,
       lease_token = NULL, lease_until = NULL, updated_at = @now WHERE ${HELD}`,
  );
  const deadRow = db.prepare(`SELECT * FROM keel_tasks WHERE id = ? AND queue = ? AND state = 'dead'`);
  // A group with a new live task takes turns again (issue #15).
  const wakeGroup = db.prepare(
    `INSERT INTO keel_groups (queue, grp) VALUES (?, ?) ON CONFLICT (queue, grp) DO UPDATE SET idle = 0 WHERE idle = 1`,
  );
  const hasGroups = db.prepare(`SELECT 1 FROM keel_groups WHERE queue = ? AND idle = 0 AND grp <> '' LIMIT 1`);
  const plainClaim = db.prepare(
    `UPDATE keel_tasks SET state = 'active', attempt = attempt + 1, lease_token = @token,
       lease_until = @leaseUntil, updated_at = @now, started_at = coalesce(started_at, @now)
     WHERE id IN (
       SELECT id FROM keel_tasks INDEXED BY keel_tasks_ordered
       WHERE queue = @queue AND state IN ('pending', 'retrying') AND grp IS NULL AND run_at <= @now
       ORDER BY priority, run_at, id LIMIT @limit)
     RETURNING ${CLAIMED}`,
  );
  const claimTurns = prepareTurns(db);
  const revive = db.prepare(
    `UPDATE keel_tasks SET state = 'pending', attempt = 0, last_error = NULL, run_at = ?, updated_at = ? WHERE id = ?`,
  );

  return {
    // Without groups or limits, one ordered scan; otherwise the turns (./turns.ts). Both in one transaction.
    claim: db.transaction((queue: string, request: ClaimRequest): unknown[] => {
      if (request.limits === undefined && !hasGroups.get(queue)) {
        const { limit, now, leaseUntil, token } = request;
        return plainClaim.all({ queue, limit, now, leaseUntil, token });
      }
      return claimTurns(queue, request);
    }),
    expire: db.prepare(
      `UPDATE keel_tasks SET
         state = CASE WHEN attempt < @max THEN 'pending' ELSE 'dead' END,
         run_at = CASE WHEN attempt < @max THEN @now ELSE run_at END,
         last_error = CASE WHEN attempt < @max THEN last_error ELSE 'lease expired on attempt ' || attempt END,
         lease_token = NULL, lease_until = NULL, updated_at = @now
       WHERE queue = @queue AND state = 'active' AND lease_until <= @now
       RETURNING id, state`,
    ),
    nextRun: db.prepare(`SELECT MIN(run_at) AS t FROM keel_tasks WHERE queue = ? AND state IN ('pending', 'retrying')`),
    nextLease: db.prepare(`SELECT MIN(lease_until) AS t FROM keel_tasks WHERE queue = ? AND state = 'active'`),
    stats: db.prepare(
      `SELECT state, SUM(run_at > @now) AS later, COUNT(*) AS n FROM keel_tasks WHERE queue = @queue GROUP BY state`,
    ),
    succeeded: db.prepare(`SELECT succeeded AS n, cancelled AS c FROM keel_queues WHERE name = ?`),
    getDone: db.prepare(`SELECT * FROM keel_task_history WHERE id = ? AND queue = ?`),
    list,
    pruneDone: pruneOf('keel_task_history', 'finished_at'),
    pruneDead: pruneOf('keel_tasks', 'updated_at'),
    dead: db.prepare(`SELECT * FROM keel_tasks WHERE queue = ? AND state = 'dead' ORDER BY id LIMIT ?`),
    get: db.prepare(`SELECT * FROM keel_tasks WHERE id = ? AND queue = ?`),

    enqueue: db.transaction((queue: string, tasks: readonly NewTask[], now: number) => {
      const out: EnqueueResult[] = [];
      for (const t of tasks) {
        const key = t.key ?? null;
        // Look first: a conflicting INSERT would still use up an AUTOINCREMENT id.
        const live = key === null ? undefined : (liveKey.get(queue, key) as { id: number } | undefined);
        if (live) {
          if (t.replace && replacePending.run({ id: live.id, payload: t.payload, now }).changes > 0) {
            out.push({ id: String(live.id), deduplicated: false, replaced: true });
          } else out.push({ id: String(live.id), deduplicated: true });
          continue;
        }
        const grp = t.group ?? null;
        const row = insert.get({
          queue,
          key,
          payload: t.payload,
          runAt: t.runAt,
          now,
          trace: t.trace ?? null,
          priority: t.priority ?? 0,
          grp,
        }) as { id: number } | undefined;
        if (row && grp !== null) wakeGroup.run(queue, grp);
        if (row) out.push({ id: String(row.id), deduplicated: false });
        else out.push({ id: String((liveKey.get(queue, key) as { id: number }).id), deduplicated: true });
      }
      return out;
    }),
    renew: db.transaction(
      (queue: string, leases: readonly { id: string; token: string }[], leaseUntil: number, now: number) => {
        const lost: string[] = [];
        for (const { id, token } of leases) {
          if (renewOne.run({ id: Number(id), queue, token, leaseUntil, now }).changes === 0) lost.push(id);
        }
        return lost;
      },
    ),
    settle: db.transaction((queue: string, outcomes: readonly Outcome[], now: number): boolean[] => {
      let succeeded = 0;
      const out = outcomes.map((o) => {
        const args = { id: Number(o.id), queue, token: o.token, now };
        switch (o.kind) {
          case 'succeeded': {
            if (keepSucceeded.run({ ...args, result: o.result ?? null }).changes === 0) return false;
            const ok = succeed.run(args).changes > 0;
            if (ok) succeeded++;
            return ok;
          }
          case 'retrying':
            return retry.run({ ...args, runAt: o.runAt, error: o.error }).changes > 0;
          case 'dead':
            return bury.run({ ...args, error: o.error }).changes > 0;
          case 'released':
            return release.run({ ...args, runAt: o.runAt }).changes > 0;
          case 'deferred':
            return defer.run({ ...args, runAt: o.runAt }).changes > 0;
        }
        return false;
      });
      if (succeeded > 0) count.run(queue, succeeded);
      return out;
    }),
    cancel: db.transaction((queue: string, id: number, now: number): CancelResult => {
      const row = liveRow.get(id, queue) as { state: TaskRow['state'] } | undefined;
      if (!row) return isDone.get(id, queue) ? 'finished' : 'not-found';
      if (row.state === 'dead') return 'finished';
      keepCancelled.run({ id, queue, now, result: null });
      dropCancelled.run({ id, queue });
      countCancel.run(queue);
      return 'cancelled';
    }),
    progress: db.transaction(
      (queue: string, updates: readonly { id: string; token: string; progress: string }[], now: number) =>
        updates.map(
          (u) => setProgress.run({ id: Number(u.id), queue, token: u.token, progress: u.progress, now }).changes > 0,
        ),
    ),
    redrive: db.transaction((queue: string, id: number, now: number): 'redriven' | 'deduplicated' | 'not-found' => {
      const row = deadRow.get(id, queue) as TaskRow | undefined;
      if (!row) return 'not-found';
      if (row.key !== null && liveKey.get(queue, row.key)) return 'deduplicated';
      revive.run(now, now, id);
      if (row.grp !== null) wakeGroup.run(queue, row.grp);
      return 'redriven';
    }),
  };
}

/** Checks `sqliteStore` options and fills in defaults; bad input throws `INVALID_OPTIONS` naming the option. */
function checkOptions(options: SqliteStoreOptions): Required<SqliteStoreOptions> {
  const o = new OptionReader('sqliteStore', options, ['path', 'synchronous', 'busyTimeoutMs'], 'a sqliteStore option');
  const path = o.string('path', 'a non-empty file path');
  if (path === undefined) throw invalidOptions('sqliteStore', 'path', 'must be a non-empty file path');
  const synchronous = o.values.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
    throw invalidOptions('sqliteStore', 'synchronous', `must be 'NORMAL' or 'FULL', got ${describeValue(synchronous)}`);
  }
  return { path, synchronous, busyTimeoutMs: o.int('busyTimeoutMs', 5000, 0) };
}
