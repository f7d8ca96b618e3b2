/**
 * The Postgres schema, one entry per version, each a function of the quoted
 * schema name. The `migrations` table records which versions ran. Append new
 * versions; never edit one that has shipped.
 */
export const postgresMigrations: readonly ((s: string) => string)[] = [
  // 1: tasks. Succeeded tasks are deleted and only counted, so the table holds live and dead work only.
  (s) => `
  CREATE TABLE ${s}.tasks (
    id          bigserial PRIMARY KEY,
    queue       text   NOT NULL,
    state       text   NOT NULL CHECK (state IN ('pending', 'active', 'retrying', 'dead')),
    key         text,
    payload     text   NOT NULL,
    attempt     int    NOT NULL DEFAULT 0,
    run_at      bigint NOT NULL,
    lease_token text,
    lease_until bigint,
    last_error  text,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
  );
  -- The claim walks this in order; its predicate is the claim's, so the planner uses it.
  CREATE INDEX tasks_ready ON ${s}.tasks (queue, run_at, id) WHERE state IN ('pending', 'retrying');
  CREATE INDEX tasks_leases ON ${s}.tasks (queue, lease_until) WHERE state = 'active';
  CREATE INDEX tasks_dead ON ${s}.tasks (queue, id) WHERE state = 'dead';
  -- Dedup: one live task per key; dead tasks do not hold their key.
  CREATE UNIQUE INDEX tasks_key ON ${s}.tasks (queue, key)
    WHERE key IS NOT NULL AND state IN ('pending', 'active', 'retrying');
  -- Succeeded counts, split in shards: one row per queue would serialise every settle of every process.
  CREATE TABLE ${s}.queue_counts (
    queue     text   NOT NULL,
    shard     int    NOT NULL,
    succeeded bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, shard)
  );
  `,
  // 2: sagas, one row per run, rewritten at every step boundary; owner + owner_until say which runtime runs it.
  (s) => `
  CREATE TABLE ${s}.sagas (
    saga        text   NOT NULL,
    id          text   NOT NULL,
    version     text   NOT NULL,
    status      text   NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed')),
    state       text   NOT NULL,
    context     text   NOT NULL,
    attempt     int    NOT NULL,
    not_before  bigint,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    owner       text,
    owner_until bigint,
    PRIMARY KEY (saga, id)
  );
  CREATE INDEX sagas_unfinished ON ${s}.sagas (saga, created_at, id) WHERE status IN ('running', 'compensating');
  `,
  // 3: bus events crossing processes. NOTIFY carries only the id, so payloads have no 8000-byte limit.
  (s) => `
  CREATE TABLE ${s}.events (
    id        bigserial PRIMARY KEY,
    publisher text   NOT NULL,
    topic     text   NOT NULL,
    payload   text   NOT NULL,
    source    text,
    time      bigint NOT NULL
  );
  CREATE INDEX events_time ON ${s}.events (time);
  `,
  // 4: fleet breakers (issue #18), one row per breaker; `data` is the shared state (src/stores/store.ts FleetBreakerRow).
  (s) => `
  CREATE TABLE ${s}.breakers (
    name text PRIMARY KEY,
    data jsonb
  );
  `,
  // 5: the claim's scan as a function, for its SET clause. A queue table's statistics never describe it (its
  // rows turn over in seconds; a fresh one has none), and on an estimate of a few rows the planner reads every
  // ready entry with a bitmap scan and sorts them, instead of walking the index in order and stopping after
  // the batch: O(backlog) per claim. Sorting and bitmap scans are off for this one query only.
  (s) => `
  CREATE FUNCTION ${s}.claimable(q text, due bigint, n int, after_run_at bigint, after_id bigint)
    RETURNS SETOF bigint LANGUAGE sql VOLATILE
    SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off
  AS $$
    SELECT id FROM ${s}.tasks
    WHERE queue = q AND state IN ('pending', 'retrying') AND run_at <= due AND (run_at, id) > (after_run_at, after_id)
    ORDER BY run_at, id LIMIT n
    FOR UPDATE SKIP LOCKED
  $$;
  `,
  // 6 (issue #17): a saga can end 'cancelled'; signals and cancel requests sent to a saga are kept until it ends.
  (s) => `
  ALTER TABLE ${s}.sagas DROP CONSTRAINT sagas_status_check;
  ALTER TABLE ${s}.sagas ADD CONSTRAINT sagas_status_check
    CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed', 'cancelled'));
  CREATE TABLE ${s}.saga_signals (
    seq     bigserial PRIMARY KEY,
    saga    text   NOT NULL,
    id      text   NOT NULL,
    name    text   NOT NULL,
    payload text   NOT NULL,
    at      bigint NOT NULL
  );
  CREATE INDEX saga_signals_saga ON ${s}.saga_signals (saga, id, seq);
  `,
];
