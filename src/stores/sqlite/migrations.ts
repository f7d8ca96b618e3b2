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
];
