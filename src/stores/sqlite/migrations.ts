/**
 * The SQLite schema, one entry per version; `PRAGMA user_version` records how
 * many have run. Append new versions; never edit one that has shipped.
 */
export const sqliteMigrations: readonly string[] = [
  // 1: tasks. Succeeded tasks are deleted and only counted (keel_queues), so the
  // table holds live and dead work only and does not grow with history.
  `
  CREATE TABLE keel_tasks (
    -- AUTOINCREMENT: ids are never reused, even after the newest task succeeded and was deleted.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'active', 'retrying', 'dead')),
    key         TEXT,
    payload     TEXT    NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    run_at      INTEGER NOT NULL,
    lease_token TEXT,
    lease_until INTEGER,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
  );
  -- The claim scans this in order; the predicate matches the claim's WHERE so the planner uses it.
  CREATE INDEX keel_tasks_ready ON keel_tasks (queue, run_at, id) WHERE state IN ('pending', 'retrying');
  CREATE INDEX keel_tasks_leases ON keel_tasks (queue, lease_until) WHERE state = 'active';
  CREATE INDEX keel_tasks_dead ON keel_tasks (queue, id) WHERE state = 'dead';
  -- Dedup: one live task per key; dead tasks do not hold their key.
  CREATE UNIQUE INDEX keel_tasks_key ON keel_tasks (queue, key)
    WHERE key IS NOT NULL AND state IN ('pending', 'active', 'retrying');
  CREATE TABLE keel_queues (
    name      TEXT PRIMARY KEY,
    succeeded INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  `,
  // 2: sagas, one row per run, rewritten at every step boundary.
  `
  CREATE TABLE keel_sagas (
    saga       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed')),
    state      TEXT    NOT NULL,
    context    TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    not_before INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (saga, id)
  ) WITHOUT ROWID;
  CREATE INDEX keel_sagas_unfinished ON keel_sagas (saga, created_at) WHERE status IN ('running', 'compensating');
  `,
  // 3 (issue #17): a saga can end 'cancelled' (SQLite cannot change a CHECK, so the table is rebuilt), and the
  // signals and cancel requests sent to a saga are kept until it ends.
  `
  CREATE TABLE keel_sagas_v3 (
    saga       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    status     TEXT    NOT NULL
      CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed', 'cancelled')),
    state      TEXT    NOT NULL,
    context    TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    not_before INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (saga, id)
  ) WITHOUT ROWID;
  INSERT INTO keel_sagas_v3 SELECT saga, id, version, status, state, context, attempt, not_before, created_at, updated_at
    FROM keel_sagas;
  DROP TABLE keel_sagas;
  ALTER TABLE keel_sagas_v3 RENAME TO keel_sagas;
  CREATE INDEX keel_sagas_unfinished ON keel_sagas (saga, created_at) WHERE status IN ('running', 'compensating');
  CREATE TABLE keel_saga_signals (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    saga    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    payload TEXT    NOT NULL,
    at      INTEGER NOT NULL
  );
  CREATE INDEX keel_saga_signals_saga ON keel_saga_signals (saga, id, seq);
  `,
  // (issue #19) the W3C trace context of the enqueue / execute, so the handler's span has the caller's as parent in
  // any process (NewTask.trace, ClaimedTask.trace, SagaRecord.trace).
  `
  ALTER TABLE keel_tasks ADD COLUMN trace_context TEXT;
  ALTER TABLE keel_sagas ADD COLUMN trace_context TEXT;
  `,
  // (issue #15/#16, task history) finished tasks: succeeded and cancelled ones move to keel_task_history
  // (the live table stays small, the claim untouched); tasks gain when they first started and their progress;
  // stats count cancellations like successes. `list` pages by id: the history index, and the rowid
  // order of keel_tasks (no new index on the live table, whose every write it would slow).
  `
  ALTER TABLE keel_tasks ADD COLUMN started_at INTEGER;
  ALTER TABLE keel_tasks ADD COLUMN progress TEXT;
  ALTER TABLE keel_queues ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE keel_task_history (
    id          INTEGER PRIMARY KEY,
    queue       TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('succeeded', 'cancelled')),
    key         TEXT,
    payload     TEXT    NOT NULL,
    result      TEXT,
    last_error  TEXT,
    progress    TEXT,
    attempt     INTEGER NOT NULL,
    run_at      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER NOT NULL
  );
  CREATE INDEX keel_task_history_state ON keel_task_history (queue, state, id);
  CREATE INDEX keel_task_history_list ON keel_task_history (queue, id);
  `,
  // (issue #16, sagas) saga history and parallel branch attempts, kept with each checkpoint; indexes for
  // saga.list (newest first, with or without a status: keyset pagination) and for the retention pruner.
  // The table is rebuilt as a rowid table: with the history in it a row outgrew what WITHOUT ROWID suits (a
  // clustered row rewritten at every checkpoint, the primary key copied into every index), and checkpoints ran at
  // half the rate. The pruner's index is on finished_at, set by a saga's final checkpoint only: an index on
  // updated_at, which every checkpoint moves, had each checkpoint rewrite an index entry.
  `
  CREATE TABLE keel_sagas_next (
    saga          TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    status        TEXT    NOT NULL
      CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed', 'cancelled')),
    state         TEXT    NOT NULL,
    context       TEXT    NOT NULL,
    attempt       INTEGER NOT NULL,
    not_before    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    trace_context TEXT,
    history       TEXT,
    branches      TEXT,
    finished_at   INTEGER,
    UNIQUE (saga, id)
  );
  INSERT INTO keel_sagas_next (saga, id, version, status, state, context, attempt, not_before, created_at, updated_at,
      trace_context, finished_at)
    SELECT saga, id, version, status, state, context, attempt, not_before, created_at, updated_at, trace_context,
      CASE WHEN status IN ('completed', 'compensated', 'failed', 'cancelled') THEN updated_at END
    FROM keel_sagas;
  DROP TABLE keel_sagas;
  ALTER TABLE keel_sagas_next RENAME TO keel_sagas;
  CREATE INDEX keel_sagas_unfinished ON keel_sagas (saga, created_at) WHERE status IN ('running', 'compensating');
  CREATE INDEX keel_sagas_newest ON keel_sagas (saga, created_at, id);
  CREATE INDEX keel_sagas_newest_by_status ON keel_sagas (saga, status, created_at, id);
  CREATE INDEX keel_sagas_finished ON keel_sagas (saga, status, finished_at, id) WHERE finished_at IS NOT NULL;
  `,
  // Schedules (issue #15): one row per schedule name; last_slot is the last slot handled, moved with a
  // compare-and-set in the same transaction as the enqueue of its task.
  `
  CREATE TABLE keel_schedules (
    name       TEXT    PRIMARY KEY,
    definition TEXT    NOT NULL,
    last_slot  INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 4 (issue #15, claim order and limits): a task's priority (lower first) and group; groups take turns at the
  // claim, least recently served first. keel_groups holds one row per group that has had tasks: `served` orders the
  // turns, `idle` takes a group without live tasks out of them (an enqueue or redrive puts it back), `starts` is
  // its claim times in the groupRateLimit window; the row '' is the turn of the tasks without a group.
  // keel_limits holds a queue's claim times in its rateLimit window.
  `
  ALTER TABLE keel_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE keel_tasks ADD COLUMN grp TEXT;
  CREATE INDEX keel_tasks_ordered ON keel_tasks (queue, priority, run_at, id)
    WHERE state IN ('pending', 'retrying') AND grp IS NULL;
  CREATE INDEX keel_tasks_group_ready ON keel_tasks (queue, grp, priority, id)
    WHERE state IN ('pending', 'retrying') AND grp IS NOT NULL;
  CREATE INDEX keel_tasks_group_held ON keel_tasks (queue, grp) WHERE state IN ('active', 'retrying') AND grp IS NOT NULL;
  CREATE TABLE keel_groups (
    queue  TEXT    NOT NULL,
    grp    TEXT    NOT NULL,
    served INTEGER NOT NULL DEFAULT 0,
    idle   INTEGER NOT NULL DEFAULT 0,
    starts TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (queue, grp)
  ) WITHOUT ROWID;
  CREATE INDEX keel_groups_turn ON keel_groups (queue, served, grp) WHERE idle = 0;
  CREATE TABLE keel_limits (
    queue  TEXT PRIMARY KEY,
    starts TEXT NOT NULL DEFAULT '[]'
  ) WITHOUT ROWID;
  `,
  // (issues #15 and #16) a finished task keeps its priority and group, so `get` and `list` answer them whatever its state.
  `
  ALTER TABLE keel_task_history ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE keel_task_history ADD COLUMN grp TEXT;
  `,
  // durable bus subscriptions (issue #16.5): name -> topic pattern, and the event log `from: 'earliest'` replays.
  `
  CREATE TABLE keel_durable_subscriptions (
    name       TEXT    PRIMARY KEY,
    pattern    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE keel_bus_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic    TEXT    NOT NULL,
    time     INTEGER NOT NULL,
    envelope TEXT    NOT NULL
  );
  CREATE INDEX keel_bus_events_time ON keel_bus_events (time);
  `,
  // (issue #19, console): a queue's pause flag, obeyed by every process on the file (stores/sqlite/operator.ts).
  `
  CREATE TABLE keel_queue_pauses (
    queue     TEXT    PRIMARY KEY,
    paused_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // (issue #15) a durable subscription's groupBy: the payload path that groups the tasks it makes.
  `
  ALTER TABLE keel_durable_subscriptions ADD COLUMN group_by TEXT;
  `,
];
