import Database from 'better-sqlite3';
import { invalidOptions, KeelError } from '../../core/errors.js';
import { describeValue, OptionReader } from '../../core/options.js';
import { withDriverErrors } from '../driverErrors.js';
import { claimedTasks, LIVE, nextDue, queueStats, taskRecord as record, type TaskRow, UNLIMITED } from '../sql/rows.js';
import type {
  ClaimedTask,
  EnqueueResult,
  ExpiredLease,
  NewTask,
  Outcome,
  QueueStats,
  Store,
  TaskRecord,
} from '../store.js';
import { sqliteMigrations } from './migrations.js';
import { sqliteSagas } from './sagas.js';

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
export function sqliteStore(options: SqliteStoreOptions): Store {
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

    async claim(queue, { limit, now, leaseUntil, token }): Promise<ClaimedTask[]> {
      return claimedTasks(
        open().claim.all({ queue, limit, now, leaseUntil, token }) as Parameters<typeof claimedTasks>[0],
        token,
      );
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
      return queueStats(
        st.stats.all({ queue, now }) as Parameters<typeof queueStats>[0],
        (st.succeeded.get(queue) as { n: number } | undefined)?.n ?? 0,
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
      const row = open().get.get(n, queue) as TaskRow | undefined;
      return row && record(row, now);
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
    `INSERT INTO keel_tasks (queue, state, key, payload, attempt, run_at, created_at, updated_at)
     VALUES (@queue, 'pending', @key, @payload, 0, @runAt, @now, @now)
     ON CONFLICT (queue, key) WHERE key IS NOT NULL AND ${LIVE} DO NOTHING
     RETURNING id`,
  );
  const liveKey = db.prepare(`SELECT id FROM keel_tasks WHERE queue = ? AND key = ? AND ${LIVE}`);
  const renewOne = db.prepare(`UPDATE keel_tasks SET lease_until = @leaseUntil, updated_at = @now WHERE ${HELD}`);
  const succeed = db.prepare(`DELETE FROM keel_tasks WHERE ${HELD}`);
  const count = db.prepare(
    `INSERT INTO keel_queues (name, succeeded) VALUES (?, ?)
     ON CONFLICT (name) DO UPDATE SET succeeded = succeeded + excluded.succeeded`,
  );
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
  const deadRow = db.prepare(`SELECT * FROM keel_tasks WHERE id = ? AND queue = ? AND state = 'dead'`);
  const revive = db.prepare(
    `UPDATE keel_tasks SET state = 'pending', attempt = 0, last_error = NULL, run_at = ?, updated_at = ? WHERE id = ?`,
  );

  return {
    claim: db.prepare(
      `UPDATE keel_tasks SET state = 'active', attempt = attempt + 1, lease_token = @token,
         lease_until = @leaseUntil, updated_at = @now
       WHERE id IN (
         SELECT id FROM keel_tasks
         WHERE queue = @queue AND state IN ('pending', 'retrying') AND run_at <= @now
         ORDER BY run_at, id LIMIT @limit)
       RETURNING id, payload, attempt, key, run_at`,
    ),
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
    succeeded: db.prepare(`SELECT succeeded AS n FROM keel_queues WHERE name = ?`),
    dead: db.prepare(`SELECT * FROM keel_tasks WHERE queue = ? AND state = 'dead' ORDER BY id LIMIT ?`),
    get: db.prepare(`SELECT * FROM keel_tasks WHERE id = ? AND queue = ?`),

    enqueue: db.transaction((queue: string, tasks: readonly NewTask[], now: number) => {
      const out: EnqueueResult[] = [];
      for (const t of tasks) {
        const key = t.key ?? null;
        // Look first: a conflicting INSERT would still use up an AUTOINCREMENT id.
        const live = key === null ? undefined : (liveKey.get(queue, key) as { id: number } | undefined);
        if (live) {
          out.push({ id: String(live.id), deduplicated: true });
          continue;
        }
        const row = insert.get({ queue, key, payload: t.payload, runAt: t.runAt, now }) as { id: number } | undefined;
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
        }
        return false;
      });
      if (succeeded > 0) count.run(queue, succeeded);
      return out;
    }),
    redrive: db.transaction((queue: string, id: number, now: number): 'redriven' | 'deduplicated' | 'not-found' => {
      const row = deadRow.get(id, queue) as TaskRow | undefined;
      if (!row) return 'not-found';
      if (row.key !== null && liveKey.get(queue, row.key)) return 'deduplicated';
      revive.run(now, now, id);
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
