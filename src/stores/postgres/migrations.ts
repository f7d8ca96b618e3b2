import { claimTurnsFinishedMigration, claimTurnsMigration } from './claimTurnsSql.js';

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
  // (issue #19) the W3C trace context of the enqueue / execute, so the handler's span has the caller's as parent in
  // any process (NewTask.trace, ClaimedTask.trace, SagaRecord.trace).
  (s) => `
  ALTER TABLE ${s}.tasks ADD COLUMN trace_context text;
  ALTER TABLE ${s}.sagas ADD COLUMN trace_context text;
  `,
  // (issue #15/#16, task history) finished tasks: succeeded and cancelled ones move to task_history in the
  // statement that ends them (the live table stays small, the claim untouched); tasks gain when they first
  // started and their progress; queue_counts counts cancellations like successes. `list` pages by id: the
  // history index and the live table's primary key (no new index on the live table, whose every write it would slow).
  (s) => `
  ALTER TABLE ${s}.tasks ADD COLUMN started_at bigint, ADD COLUMN progress text;
  ALTER TABLE ${s}.queue_counts ADD COLUMN cancelled bigint NOT NULL DEFAULT 0;
  CREATE TABLE ${s}.task_history (
    id          bigint PRIMARY KEY,
    queue       text   NOT NULL,
    state       text   NOT NULL CHECK (state IN ('succeeded', 'cancelled')),
    key         text,
    payload     text   NOT NULL,
    result      text,
    last_error  text,
    progress    text,
    attempt     int    NOT NULL,
    run_at      bigint NOT NULL,
    created_at  bigint NOT NULL,
    started_at  bigint,
    finished_at bigint NOT NULL
  );
  CREATE INDEX task_history_state ON ${s}.task_history (queue, state, id);
  CREATE INDEX task_history_list ON ${s}.task_history (queue, id);
  `,
  // (issue #16, sagas) saga history and parallel branch attempts, kept with each checkpoint; indexes for
  // saga.list (newest first, with or without a status: keyset pagination) and for the retention pruner. The
  // pruner's index is on finished_at, set by a saga's final checkpoint only: with updated_at (moved by every
  // checkpoint) in an index, no checkpoint could be a HOT update, and each wrote an entry in every index.
  (s) => `
  ALTER TABLE ${s}.sagas ADD COLUMN history text;
  ALTER TABLE ${s}.sagas ADD COLUMN branches text;
  CREATE INDEX sagas_newest ON ${s}.sagas (saga, created_at, id);
  CREATE INDEX sagas_newest_by_status ON ${s}.sagas (saga, status, created_at, id);
  ALTER TABLE ${s}.sagas ADD COLUMN finished_at bigint;
  CREATE INDEX sagas_finished ON ${s}.sagas (saga, status, finished_at, id) WHERE finished_at IS NOT NULL;
  `,
  // Schedules (issue #15): one row per schedule name; last_slot is the last slot handled, moved with a
  // compare-and-set in the same transaction as the enqueue of its task (exactly one task per slot).
  (s) => `
  CREATE TABLE ${s}.schedules (
    name       text   PRIMARY KEY,
    definition text   NOT NULL,
    last_slot  bigint NOT NULL
  );
  `,
  // 7 (issue #15, claim order and limits): a task's priority (lower first) and group. Groups take turns at the
  // claim, least recently served first: `groups` holds one row per group that has had tasks (`served` orders the
  // turns from the group_turns sequence, `idle` takes a group without live tasks out of them until an enqueue or a
  // redrive puts it back, `starts` its claim times in the groupRateLimit window); the row '' is the turn of the tasks
  // without a group. `queue_limits` is locked by every claim under a globalConcurrency or rateLimit, which makes
  // those claims of the whole fleet take turns, and holds the claim times in the rateLimit window.
  // claimable_ordered is migration 5's claimable with the priority in its key, for tasks without a group.
  // claim_turns is the claim of a queue with groups or limits: one call, one transaction.
  (s) => `
  ALTER TABLE ${s}.tasks ADD COLUMN priority int NOT NULL DEFAULT 0;
  ALTER TABLE ${s}.tasks ADD COLUMN grp text;
  CREATE INDEX tasks_ordered ON ${s}.tasks (queue, priority, run_at, id)
    WHERE state IN ('pending', 'retrying') AND grp IS NULL;
  CREATE INDEX tasks_group_ready ON ${s}.tasks (queue, grp, priority, id)
    WHERE state IN ('pending', 'retrying') AND grp IS NOT NULL;
  CREATE INDEX tasks_group_held ON ${s}.tasks (queue, grp) WHERE state IN ('active', 'retrying') AND grp IS NOT NULL;
  CREATE SEQUENCE ${s}.group_turns;
  CREATE TABLE ${s}.groups (
    queue  text     NOT NULL,
    grp    text     NOT NULL,
    served bigint   NOT NULL DEFAULT 0,
    idle   boolean  NOT NULL DEFAULT false,
    starts bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (queue, grp)
  );
  CREATE INDEX groups_turn ON ${s}.groups (queue, served, grp) WHERE NOT idle;
  CREATE TABLE ${s}.queue_limits (
    queue  text     PRIMARY KEY,
    starts bigint[] NOT NULL DEFAULT '{}'
  );
  CREATE FUNCTION ${s}.claimable_ordered(q text, due bigint, n int, after_priority int, after_run_at bigint,
      after_id bigint)
    RETURNS SETOF bigint LANGUAGE sql VOLATILE
    SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off
  AS $$
    SELECT id FROM ${s}.tasks
    WHERE queue = q AND state IN ('pending', 'retrying') AND grp IS NULL AND run_at <= due
      AND (priority, run_at, id) > (after_priority, after_run_at, after_id)
    ORDER BY priority, run_at, id LIMIT n
    FOR UPDATE SKIP LOCKED
  $$;
  CREATE FUNCTION ${s}.recent_starts(starts bigint[], due bigint, per bigint, keep int, added int)
    RETURNS bigint[] LANGUAGE sql IMMUTABLE
  AS $$
    SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM (
      SELECT x FROM unnest(starts || array_fill(due, ARRAY[added])) x WHERE x > due - per ORDER BY x DESC LIMIT keep) z
  $$;
  CREATE FUNCTION ${s}.claim_turns(q text, due bigint, n int, tok text, lease bigint,
      gc int, rmax int, rper bigint, ggc int, grmax int, grper bigint,
      after_priority int, after_run_at bigint, after_id bigint)
    RETURNS TABLE (id bigint, payload text, attempt int, key text, run_at bigint, priority int, grp text,
      trace_context text)
    LANGUAGE plpgsql VOLATILE
    -- No JIT: a plan that the settings above price at 1e10 (a seq scan they discourage) crosses jit_above_cost, and
    -- compiling it took 300 ms per statement, seconds per claim.
    SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off
  AS $$
  #variable_conflict use_column
  DECLARE
    budget int := n;
    wanted int;
    qstarts bigint[];
    g record;
    gstarts bigint[];
    room int;
    got int;
  BEGIN
    -- Not worth an fsync, as in the plain claim: a claim lost in a crash is simply claimed again.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF gc IS NOT NULL OR rmax IS NOT NULL THEN
      -- Every claim of a limited queue waits here for the one before it, so what it counts next is final.
      INSERT INTO ${s}.queue_limits AS l (queue) VALUES (q) ON CONFLICT DO NOTHING;
      SELECT l.starts INTO qstarts FROM ${s}.queue_limits l WHERE l.queue = q FOR UPDATE;
      IF gc IS NOT NULL THEN
        budget := least(budget, gc - (SELECT count(*) FROM ${s}.tasks a WHERE a.queue = q AND a.state = 'active')::int);
      END IF;
      IF rmax IS NOT NULL THEN
        budget := least(budget, rmax - (SELECT count(*) FROM unnest(qstarts) x WHERE x > due - rper)::int);
      END IF;
    END IF;
    IF budget <= 0 THEN RETURN; END IF;
    wanted := budget;
    INSERT INTO ${s}.groups AS x (queue, grp) VALUES (q, '') ON CONFLICT DO NOTHING;
    FOR g IN
      SELECT x.grp FROM ${s}.groups x WHERE x.queue = q AND NOT x.idle ORDER BY x.served, x.grp LIMIT n * 2 + 16
    LOOP
      EXIT WHEN budget <= 0;
      -- A group locked by another claim (or an enqueue waking it) is skipped: its turn is being taken.
      SELECT x.starts INTO gstarts FROM ${s}.groups x WHERE x.queue = q AND x.grp = g.grp AND NOT x.idle
        FOR UPDATE SKIP LOCKED;
      CONTINUE WHEN NOT FOUND;
      got := 0;
      IF g.grp = '' THEN
        RETURN QUERY UPDATE ${s}.tasks t SET state = 'active', attempt = t.attempt + 1, lease_token = tok,
            lease_until = lease, updated_at = due, started_at = coalesce(t.started_at, due)
          WHERE t.id = ANY(ARRAY(SELECT ${s}.claimable_ordered(q, due, budget, after_priority, after_run_at, after_id)))
          RETURNING t.id, t.payload, t.attempt, t.key, t.run_at, t.priority, t.grp, t.trace_context;
        GET DIAGNOSTICS got = ROW_COUNT;
        UPDATE ${s}.groups x SET served = nextval('${s}.group_turns') WHERE x.queue = q AND x.grp = '';
      ELSE
        room := budget;
        IF ggc IS NOT NULL THEN
          -- Its slots: active tasks and tasks waiting out a backoff (groupConcurrency 1 keeps order through retries).
          room := least(room, ggc - (SELECT count(*) FROM ${s}.tasks h WHERE h.queue = q AND h.grp = g.grp
            AND h.state IN ('active', 'retrying') AND (h.state = 'active' OR h.run_at > due))::int);
        END IF;
        IF grmax IS NOT NULL THEN
          room := least(room, grmax - (SELECT count(*) FROM unnest(gstarts) x WHERE x > due - grper)::int);
        END IF;
        IF room > 0 THEN
          -- Within a group: priority, then enqueue order, so a retried task keeps its place.
          RETURN QUERY UPDATE ${s}.tasks t SET state = 'active', attempt = t.attempt + 1, lease_token = tok,
              lease_until = lease, updated_at = due, started_at = coalesce(t.started_at, due)
            WHERE t.id = ANY(ARRAY(
              SELECT y.id FROM ${s}.tasks y
              WHERE y.queue = q AND y.grp = g.grp AND y.state IN ('pending', 'retrying') AND y.run_at <= due
              ORDER BY y.priority, y.id LIMIT room FOR UPDATE SKIP LOCKED))
            RETURNING t.id, t.payload, t.attempt, t.key, t.run_at, t.priority, t.grp, t.trace_context;
          GET DIAGNOSTICS got = ROW_COUNT;
        END IF;
        -- A fresh statement sees every enqueue that committed before this row was locked; a later one waits for it.
        -- Two probes, one per partial index (ready, held): no index covers all live states.
        IF got = 0
          AND NOT EXISTS (SELECT 1 FROM ${s}.tasks y WHERE y.queue = q AND y.grp = g.grp
            AND y.state IN ('pending', 'retrying'))
          AND NOT EXISTS (SELECT 1 FROM ${s}.tasks y WHERE y.queue = q AND y.grp = g.grp
            AND y.state IN ('active', 'retrying')) THEN
          UPDATE ${s}.groups x SET idle = true WHERE x.queue = q AND x.grp = g.grp;
        ELSE
          UPDATE ${s}.groups x SET served = nextval('${s}.group_turns'),
            starts = CASE WHEN grmax IS NULL THEN x.starts ELSE ${s}.recent_starts(x.starts, due, grper, grmax, got) END
          WHERE x.queue = q AND x.grp = g.grp;
        END IF;
      END IF;
      budget := budget - got;
    END LOOP;
    IF rmax IS NOT NULL THEN
      UPDATE ${s}.queue_limits l SET starts = ${s}.recent_starts(qstarts, due, rper, rmax, wanted - budget)
      WHERE l.queue = q;
    END IF;
  END
  $$;
  `,
  // (issues #15 and #16) a finished task keeps its priority and group, so `get` and `list` answer them whatever its state.
  (s) => `
  ALTER TABLE ${s}.task_history ADD COLUMN priority int NOT NULL DEFAULT 0, ADD COLUMN grp text;
  `,
  // durable bus subscriptions (issue #16.5): name -> topic pattern, and the event log `from: 'earliest'` replays.
  (s) => `
  CREATE TABLE ${s}.durable_subscriptions (
    name       text   PRIMARY KEY,
    pattern    text   NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE TABLE ${s}.bus_events (
    seq      bigserial PRIMARY KEY,
    topic    text   NOT NULL,
    time     bigint NOT NULL,
    envelope text   NOT NULL
  );
  CREATE INDEX bus_events_time ON ${s}.bus_events (time);
  `,
  // 7 (issue #19, console): a queue's fleet-wide pause flag, obeyed by every process's queue (stores/postgres/operator.ts).
  (s) => `
  CREATE TABLE ${s}.queue_pauses (
    queue     text PRIMARY KEY,
    paused_at bigint NOT NULL
  );
  `,
  // (issue #15) a durable subscription's groupBy: the payload path that groups the tasks it makes.
  (s) => `
  ALTER TABLE ${s}.durable_subscriptions ADD COLUMN group_by text;
  `,
  // (issue #15, speed) claim_turns claims across groups with one cursor and a fixed number of statements per call.
  claimTurnsMigration,
  // (issue #15, speed) claim_turns leaves the claimer's finished tasks out of the global concurrency count.
  claimTurnsFinishedMigration,
];
