/**
 * The migration that replaces `claim_turns` (the claim of a queue with groups or limits; migration 7 has the
 * tables and the first version), keeping its signature, so the store calls it as before.
 *
 * The first version ran three to five statements per group it visited (lock the group, claim its tasks, probe
 * whether it ran dry, move it to the back of the turns): on 10,000 groups of two tasks a claim of 500 ran some
 * 1,000 statements, a quarter of the plain claim's rate. This one opens one cursor over the groups in turn order
 * and fetches a row per group: the fetch locks the group (SKIP LOCKED: another claim is taking its turn) and
 * selects its ready tasks up to the room its limits leave, in the same executor call. The fetches stop when the
 * budget is met, so no group past it is locked. Then three statements whatever the number of groups: the tasks
 * become active, the visited groups go to the back of the turns (in visiting order) or out of them when they ran
 * dry, and the rate-limit window moves.
 *
 * Semantics are the first version's: least recently served group first, each taking what its room allows;
 * groupConcurrency counts active tasks and tasks waiting out a backoff; the fleet limits are counted under the
 * `queue_limits` row lock, so claims of the whole fleet under them take turns. The last argument (a later
 * migration, `claimTurnsFinishedMigration`) names the claimer's tasks whose handlers have returned: they hold no
 * slot of the global concurrency, so a claim need not wait for their settle.
 */
export const claimTurnsMigration = (s: string): string => `
  CREATE OR REPLACE FUNCTION ${s}.claim_turns(q text, due bigint, n int, tok text, lease bigint,
      gc int, rmax int, rper bigint, ggc int, grmax int, grper bigint,
      after_priority int, after_run_at bigint, after_id bigint, fin jsonb)
    RETURNS TABLE (id bigint, payload text, attempt int, key text, run_at bigint, priority int, grp text,
      trace_context text)
    LANGUAGE plpgsql VOLATILE
    SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off
  AS $$
  #variable_conflict use_column
  DECLARE
    budget int := n;
    wanted int;
    qstarts bigint[];
    turns refcursor;
    g record;
    ids bigint[] := '{}';
    took int;
    visited text[] := '{}';
    gave int[] := '{}';
  BEGIN
    -- Not worth an fsync, as in the plain claim: a claim lost in a crash is simply claimed again.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF gc IS NOT NULL OR rmax IS NOT NULL THEN
      -- Every claim of a limited queue waits here for the one before it, so what it counts next is final.
      INSERT INTO ${s}.queue_limits AS l (queue) VALUES (q) ON CONFLICT DO NOTHING;
      SELECT l.starts INTO qstarts FROM ${s}.queue_limits l WHERE l.queue = q FOR UPDATE;
      IF gc IS NOT NULL THEN
        -- The claimer's finished tasks (fin: {id: token}, outcomes on their way) run no more: no slot for them.
        budget := least(budget, gc - (SELECT count(*) FROM ${s}.tasks a WHERE a.queue = q AND a.state = 'active'
          AND a.lease_token IS DISTINCT FROM fin ->> a.id::text)::int);
      END IF;
      IF rmax IS NOT NULL THEN
        budget := least(budget, rmax - (SELECT count(*) FROM unnest(qstarts) x WHERE x > due - rper)::int);
      END IF;
    END IF;
    IF budget <= 0 THEN RETURN; END IF;
    wanted := budget;
    IF ggc IS NULL AND grmax IS NULL AND NOT EXISTS (
        SELECT 1 FROM ${s}.groups x WHERE x.queue = q AND NOT x.idle AND x.grp <> '') THEN
      -- No group has work: the tasks without one in order, as the plain claim takes them, without the turns
      -- (a third of a small claim's cost). A group woken meanwhile is served from the next claim on.
      ids := ARRAY(SELECT ${s}.claimable_ordered(q, due, budget, after_priority, after_run_at, after_id));
      budget := budget - cardinality(ids);
    ELSE
      INSERT INTO ${s}.groups AS x (queue, grp) VALUES (q, '') ON CONFLICT DO NOTHING;
      -- One row per group, fetched one at a time: a group past the budget is neither locked nor read. Each group
      -- offers up to the whole budget (the last one visited may offer more than is left: the extra tasks stay
      -- pending). The row '' is the turn of the tasks without a group, found by migration 7's claimable_ordered.
      OPEN turns FOR
        SELECT t.grp, ARRAY(
            SELECT c.id FROM ${s}.claimable_ordered(q, due, budget, after_priority, after_run_at, after_id) c(id)
            WHERE t.grp = ''
            UNION ALL
            SELECT y.id FROM (
              SELECT y.id FROM ${s}.tasks y
              WHERE t.grp <> '' AND y.queue = q AND y.grp = t.grp AND y.state IN ('pending', 'retrying')
                AND y.run_at <= due
              -- Within a group: priority, then enqueue order, so a retried task keeps its place.
              ORDER BY y.priority, y.id
              LIMIT greatest(0, least(budget,
                -- Its slots: active tasks and tasks waiting out a backoff (groupConcurrency 1 keeps order through retries).
                CASE WHEN ggc IS NULL THEN budget ELSE ggc - (SELECT count(*) FROM ${s}.tasks h
                  WHERE h.queue = q AND h.grp = t.grp AND h.state IN ('active', 'retrying')
                    AND (h.state = 'active' OR h.run_at > due))::int END,
                CASE WHEN grmax IS NULL THEN budget
                  ELSE grmax - (SELECT count(*) FROM unnest(t.starts) x WHERE x > due - grper)::int END))
              FOR UPDATE SKIP LOCKED) y) AS ids
        FROM (
          -- A group locked by another claim (or an enqueue waking it) is skipped: its turn is being taken.
          SELECT x.grp, x.starts, x.served FROM ${s}.groups x WHERE x.queue = q AND NOT x.idle
          ORDER BY x.served, x.grp LIMIT n * 2 + 16
          FOR UPDATE SKIP LOCKED) t
        -- The tasks are read in the snapshot the cursor opened with, the lock holds the group's newest row: a group
        -- that a claim which committed since then has served (its row moved on) is skipped like a locked one, or
        -- this claim would not see the tasks that claim started and would take the next ones too (groupConcurrency
        -- and per-group order broken). Every claim of a group moves its row, so the row tells.
        WHERE t.served = (SELECT v.served FROM ${s}.groups v WHERE v.queue = q AND v.grp = t.grp);
      LOOP
        EXIT WHEN budget <= 0;
        FETCH turns INTO g;
        EXIT WHEN NOT FOUND;
        took := least(cardinality(g.ids), budget);
        ids := ids || g.ids[1:took];
        visited := visited || g.grp;
        gave := gave || took;
        budget := budget - took;
      END LOOP;
      CLOSE turns;
    END IF;
    RETURN QUERY UPDATE ${s}.tasks t SET state = 'active', attempt = t.attempt + 1, lease_token = tok,
        lease_until = lease, updated_at = due, started_at = coalesce(t.started_at, due)
      WHERE t.id = ANY(ids)
      RETURNING t.id, t.payload, t.attempt, t.key, t.run_at, t.priority, t.grp, t.trace_context;
    -- A fresh statement sees every enqueue that committed before the row was locked; a later one waits for it.
    -- A group that gave nothing and has no live task leaves the turns (two probes, one per partial index: ready,
    -- held); every other visited group goes to the back, in the order it was visited.
    IF cardinality(visited) > 0 THEN
      UPDATE ${s}.groups x SET
          idle = v.dry,
          served = CASE WHEN v.dry THEN x.served ELSE v.turn END,
          starts = CASE WHEN grmax IS NULL OR v.dry OR x.grp = '' THEN x.starts
            ELSE ${s}.recent_starts(x.starts, due, grper, grmax, v.got) END
        FROM (
          SELECT u.grp, u.got, nextval('${s}.group_turns') AS turn,
            u.got = 0 AND u.grp <> ''
              AND NOT EXISTS (SELECT 1 FROM ${s}.tasks y WHERE y.queue = q AND y.grp = u.grp
                AND y.state IN ('pending', 'retrying'))
              AND NOT EXISTS (SELECT 1 FROM ${s}.tasks y WHERE y.queue = q AND y.grp = u.grp
                AND y.state IN ('active', 'retrying')) AS dry
          FROM unnest(visited, gave) WITH ORDINALITY u(grp, got, ord)) v
        WHERE x.queue = q AND x.grp = v.grp;
    END IF;
    IF rmax IS NOT NULL THEN
      UPDATE ${s}.queue_limits l SET starts = ${s}.recent_starts(qstarts, due, rper, rmax, wanted - budget)
      WHERE l.queue = q;
    END IF;
  END
  $$;
`;

/**
 * claim_turns takes the claimer's finished tasks (see ClaimRequest.finished). The old signature stays as a wrapper,
 * so a process still running the previous version keeps claiming during a rolling upgrade.
 */
export const claimTurnsFinishedMigration = (s: string): string => `
  ${claimTurnsMigration(s)}
  CREATE OR REPLACE FUNCTION ${s}.claim_turns(q text, due bigint, n int, tok text, lease bigint,
      gc int, rmax int, rper bigint, ggc int, grmax int, grper bigint,
      after_priority int, after_run_at bigint, after_id bigint)
    RETURNS TABLE (id bigint, payload text, attempt int, key text, run_at bigint, priority int, grp text,
      trace_context text)
    LANGUAGE sql VOLATILE
  AS $$
    SELECT * FROM ${s}.claim_turns(q, due, n, tok, lease, gc, rmax, rper, ggc, grmax, grper,
      after_priority, after_run_at, after_id, NULL::jsonb)
  $$;
`;
