import { MicrotaskBatcher } from '../../core/batcher.js';
import { KeelError } from '../../core/errors.js';
import type { SagaRecord, SagaSignal, SagaStore, SharedSagas, WatchedSagaSignals } from '../sagaStore.js';
import { type SagaRow, sagaRecord as toRecord } from '../sql/rows.js';
import type { NotifyHandler } from './listen.js';
import type { Queryable } from './tasks.js';

function statements(s: string, channel: string) {
  return {
    // Many saves in one statement; `owner` is this store's id, so another runtime can tell whose saga it is.
    // Saves, renewals and releases lock saga rows in (saga, id) order, so they queue up instead of deadlocking.
    save: `
      WITH dropped AS (
        DELETE FROM ${s}.saga_signals g USING unnest($1::text[], $2::text[], $4::text[]) AS f(saga, id, status)
        WHERE f.status NOT IN ('running', 'compensating') AND g.saga = f.saga AND g.id = f.id)
      INSERT INTO ${s}.sagas (saga, id, version, status, state, context, attempt, not_before, created_at, updated_at,
        owner, owner_until, trace_context, history, branches, finished_at)
      SELECT r.saga, r.id, r.version, r.status, r.state, r.context, r.attempt, r.not_before, r.created_at, r.updated_at,
        CASE WHEN r.status IN ('running', 'compensating') THEN $11 END,
        CASE WHEN r.status IN ('running', 'compensating') THEN r.updated_at + $12 END,
        r.trace_context, r.history, r.branches,
        CASE WHEN r.status NOT IN ('running', 'compensating') THEN r.updated_at END
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bigint[],
        $9::bigint[], $10::bigint[], $13::text[], $14::text[], $15::text[])
        AS r(saga, id, version, status, state, context, attempt, not_before, created_at, updated_at, trace_context,
          history, branches)
      ORDER BY r.saga, r.id
      ON CONFLICT (saga, id) DO UPDATE SET version = excluded.version, status = excluded.status,
        state = excluded.state, context = excluded.context, attempt = excluded.attempt,
        not_before = excluded.not_before, updated_at = excluded.updated_at,
        owner = excluded.owner, owner_until = excluded.owner_until, trace_context = excluded.trace_context,
        history = excluded.history, branches = excluded.branches, finished_at = excluded.finished_at
      -- Another runtime adopted it (this one went quiet past its lease): its writes win from now on.
      -- A finished saga is never written again: a runtime that read it as new before it ended joins it instead.
      -- The one exception: a completed child saga undone as a whole by its parent ends compensated.
      WHERE (${s}.sagas.status IN ('running', 'compensating')
          AND (${s}.sagas.owner IS NULL OR ${s}.sagas.owner = $11 OR ${s}.sagas.owner_until <= excluded.updated_at))
        OR (${s}.sagas.status = 'completed' AND excluded.status = 'compensated')
      RETURNING saga, id`,
    load: `SELECT * FROM ${s}.sagas WHERE saga = $1 AND id = $2`,
    // Newest first by the (saga[, status], created_at, id) indexes; a page starts strictly after the cursor.
    list: `
      SELECT * FROM ${s}.sagas WHERE saga = $1 AND (created_at, id) < ($2, $3)
      ORDER BY created_at DESC, id DESC LIMIT $4`,
    listByStatus: `
      SELECT * FROM ${s}.sagas WHERE saga = $1 AND status = $5 AND (created_at, id) < ($2, $3)
      ORDER BY created_at DESC, id DESC LIMIT $4`,
    // Oldest first: the same indexes read upwards.
    listOldest: `
      SELECT * FROM ${s}.sagas WHERE saga = $1 AND (created_at, id) > ($2, $3)
      ORDER BY created_at, id LIMIT $4`,
    listOldestByStatus: `
      SELECT * FROM ${s}.sagas WHERE saga = $1 AND status = $5 AND (created_at, id) > ($2, $3)
      ORDER BY created_at, id LIMIT $4`,
    // One pruner at a time per schema: the statement runs only under a transaction-level advisory lock that no
    // other session holds (pg_try_: a busy lock skips this round instead of queueing behind it). The newest $3
    // of a status stay; beyond them, or finished before $4, go, oldest first, $5 at a time.
    prune: `
      WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtext($6)) AS got),
      edge AS (
        SELECT finished_at, id FROM ${s}.sagas WHERE saga = $1 AND status = $2 AND finished_at IS NOT NULL
        ORDER BY finished_at DESC, id DESC OFFSET $3 LIMIT 1),
      doomed AS (
        SELECT id FROM ${s}.sagas WHERE (SELECT got FROM lock) AND saga = $1 AND status = $2 AND finished_at IS NOT NULL
          AND (finished_at < $4 OR (finished_at, id) <= (SELECT finished_at, id FROM edge))
        ORDER BY finished_at, id LIMIT $5
        FOR UPDATE SKIP LOCKED),
      gone AS (DELETE FROM ${s}.sagas t USING doomed WHERE t.saga = $1 AND t.id = doomed.id RETURNING 1)
      SELECT (SELECT got FROM lock) AS got, (SELECT count(*) FROM gone)::int AS deleted`,
    // The NOTIFY goes out when the row commits; its payload names the saga, so only its owner reads again.
    signal: `
      WITH kept AS (
        INSERT INTO ${s}.saga_signals (saga, id, name, payload, at) VALUES ($1, $2, $3, $4, $5) RETURNING saga, id)
      SELECT pg_notify('${channel}', json_build_array(saga, id)::text) FROM kept`,
    signals: `
      SELECT seq, saga, id, name, payload, at FROM ${s}.saga_signals WHERE saga = $1 AND id = ANY($2::text[]) ORDER BY seq`,
    unfinished: `
      SELECT * FROM ${s}.sagas WHERE saga = $1 AND status IN ('running', 'compensating') ORDER BY created_at, id`,
    // Takes the unfinished sagas nobody holds (owner gone quiet past owner_until) for `owner`.
    adopt: `
      WITH picked AS (
        SELECT saga, id FROM ${s}.sagas
        WHERE saga = $1 AND status IN ('running', 'compensating') AND ($5::text IS NULL OR id = $5)
          AND ($6::text[] IS NULL OR version = ANY($6::text[]))
          AND (owner IS NULL OR owner = $2 OR owner_until <= $3)
        ORDER BY created_at, id
        FOR UPDATE SKIP LOCKED)
      UPDATE ${s}.sagas t SET owner = $2, owner_until = $4
      FROM picked WHERE t.saga = picked.saga AND t.id = picked.id
      RETURNING t.*`,
    renew: `
      WITH locked AS (SELECT id FROM ${s}.sagas WHERE saga = $1 AND id = ANY($2::text[]) ORDER BY id FOR UPDATE)
      UPDATE ${s}.sagas t SET owner_until = $4 FROM locked
      WHERE t.saga = $1 AND t.id = locked.id AND t.owner = $3 AND t.status IN ('running', 'compensating')
      RETURNING t.id`,
    release: `
      WITH locked AS (SELECT id FROM ${s}.sagas WHERE saga = $1 AND id = ANY($2::text[]) ORDER BY id FOR UPDATE)
      UPDATE ${s}.sagas t SET owner = NULL, owner_until = NULL FROM locked
      WHERE t.saga = $1 AND t.id = locked.id AND t.owner = $3`,
  };
}

type Sql = ReturnType<typeof statements>;

/**
 * The name whose `hashtext` keys the advisory lock one saga pruner holds per
 * schema (any tool may take it to pause pruning).
 */
export function sagaPruneLockName(schema: string): string {
  return `keel:${schema}:saga-prune`;
}

type SagaOwnership = SharedSagas;

/**
 * The saga half of the Postgres store. Saves of one tick share one statement;
 * each save marks the saga as held by `owner` for `leaseMs` past its
 * `updatedAt`, so a runtime that dies lets go of its sagas after that long.
 */
export function postgresSagas(
  db: () => Queryable,
  schema: string,
  tag: string,
  owner: string,
  leaseMs: number,
  notify?: {
    /** The store's shared LISTEN connection (it throws while the store is closed). */
    listen: () => { listen(channel: string, handler: NotifyHandler): () => void };
    channel: string;
  },
): SagaStore & SagaOwnership & Partial<WatchedSagaSignals> {
  const channel = notify?.channel ?? `keel_${tag}_sagas`;
  const sql: Sql = statements(schema, channel);
  const run = (name: keyof Sql, values: unknown[]) =>
    db().query({ name: `keel_${tag}_saga_${name}`, text: sql[name], values });

  // Saves of one tick share one statement.
  const batch = new MicrotaskBatcher<{ record: SagaRecord; done: () => void; failed: (e: unknown) => void }>(
    async (items) => {
      // One statement cannot upsert a row twice: the last save of each saga wins, as it would one by one.
      const last = new Map<string, SagaRecord>();
      for (const { record } of items) last.set(`${record.saga}\u0000${record.id}`, record);
      const rows = [...last.values()];
      const col = <K extends keyof SagaRecord>(k: K) => rows.map((r) => r[k] ?? null);
      try {
        const res = await run('save', [
          col('saga'),
          col('id'),
          col('version'),
          col('status'),
          col('state'),
          col('context'),
          col('attempt'),
          col('notBefore'),
          col('createdAt'),
          col('updatedAt'),
          owner,
          leaseMs,
          col('trace'),
          col('history'),
          col('branches'),
        ]);
        const written = new Set((res.rows as { saga: string; id: string }[]).map((r) => `${r.saga}\u0000${r.id}`));
        for (const item of items) {
          const { saga, id } = item.record;
          if (written.has(`${saga}\u0000${id}`)) item.done();
          else
            item.failed(
              new KeelError(
                'SAGA_NOT_OWNED',
                `saga '${saga}' '${id}' is now run by another runtime (this one let its lease of ${leaseMs} ms lapse)`,
              ),
            );
        }
      } catch (error) {
        for (const item of items) item.failed(error);
      }
    },
  );

  return {
    saveSaga(record) {
      return new Promise<void>((done, failed) => batch.add({ record, done, failed }));
    },
    async loadSaga(saga, id) {
      const row = (await run('load', [saga, id])).rows[0] as SagaRow | undefined;
      return row && toRecord(row);
    },
    async unfinishedSagas(saga) {
      return ((await run('unfinished', [saga])).rows as SagaRow[]).map(toRecord);
    },
    async listSagas(saga, q) {
      const oldest = q.order === 'oldest';
      const start = oldest ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
      const page = [saga, q.after?.createdAt ?? start, q.after?.id ?? '', q.limit];
      const res =
        q.status === undefined
          ? await run(oldest ? 'listOldest' : 'list', page)
          : await run(oldest ? 'listOldestByStatus' : 'listByStatus', [...page, q.status]);
      return (res.rows as SagaRow[]).map(toRecord);
    },
    async pruneSagas(saga, rule) {
      const keep = rule.keep === undefined || !Number.isFinite(rule.keep) ? null : rule.keep;
      const before = rule.before === undefined || !Number.isFinite(rule.before) ? null : rule.before;
      // No keep count: no edge (OFFSET NULL would mean none, so keep every record by skipping past all of them).
      const res = await run('prune', [
        saga,
        rule.status,
        keep ?? '9223372036854775807',
        before,
        rule.limit,
        sagaPruneLockName(schema),
      ]);
      const row = res.rows[0] as { got: boolean; deleted: number };
      return { deleted: row.deleted, busy: !row.got };
    },
    async sendSagaSignal(g) {
      await run('signal', [g.saga, g.id, g.name, g.payload, g.at]);
    },
    async sagaSignals(saga, ids) {
      if (ids.length === 0) return [];
      const rows = (await run('signals', [saga, ids])).rows as (Omit<SagaSignal, 'seq' | 'at'> & {
        seq: string | number;
        at: string | number;
      })[];
      return rows.map((r) => ({ ...r, seq: Number(r.seq), at: Number(r.at) }));
    },
    ...(notify && {
      watchSagaSignals(onSignal: (saga: string | null | undefined, id?: string) => void) {
        return notify.listen().listen(notify.channel, (payload) => {
          if (payload === null || payload === undefined) {
            onSignal(payload);
            return;
          }
          const [saga, id] = JSON.parse(payload) as [string, string];
          onSignal(saga, id);
        });
      },
    }),
    sagaLeaseMs: leaseMs,
    async adoptSagas(saga, now, id, versions) {
      const rows = (await run('adopt', [saga, owner, now, now + leaseMs, id ?? null, versions ?? null]))
        .rows as SagaRow[];
      return rows.map(toRecord).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    },
    async renewSagas(saga, ids, now) {
      if (ids.length === 0) return [];
      const kept = new Set(
        ((await run('renew', [saga, ids, owner, now + leaseMs])).rows as { id: string }[]).map((r) => r.id),
      );
      return ids.filter((id) => !kept.has(id));
    },
    async releaseSagas(saga, ids) {
      if (ids.length > 0) await run('release', [saga, ids, owner]);
    },
  };
}
