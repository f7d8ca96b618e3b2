import type Database from 'better-sqlite3';
import { MicrotaskBatcher } from '../../core/batcher.js';
import { isFinalSagaStatus } from '../../core/states.js';
import type { SagaRecord, SagaSignal, SagaStore } from '../sagaStore.js';
import { type SagaRow, sagaRecord as toRecord } from '../sql/rows.js';

/** The checkpoint upsert; `also` names the columns an update sets besides those every checkpoint moves. */
function saveSql(also: string, where = ''): string {
  return `INSERT INTO keel_sagas (saga, id, version, status, state, context, attempt, not_before, created_at, updated_at,
      trace_context, history, branches, finished_at)
    VALUES (@saga, @id, @version, @status, @state, @context, @attempt, @notBefore, @createdAt, @updatedAt, @trace,
      @history, @branches, @finishedAt)
    ON CONFLICT (saga, id) DO UPDATE SET ${also} version = excluded.version, state = excluded.state,
      context = excluded.context, attempt = excluded.attempt, not_before = excluded.not_before,
      updated_at = excluded.updated_at, trace_context = excluded.trace_context, history = excluded.history,
      branches = excluded.branches ${where}`;
}

function prepare(db: Database.Database) {
  return {
    save: db.prepare(saveSql('status = excluded.status, finished_at = excluded.finished_at,')),
    // A running saga's next checkpoint: its status and finished_at stay as they are, so the indexes on them
    // (newest_by_status, finished) are left alone (SQLite rewrites an index whose columns the SET names: a fifth
    // of a checkpoint's cost). Only a running row takes it: a saga never goes back to running.
    saveRunning: db.prepare(saveSql('', `WHERE keel_sagas.status = 'running'`)),
    load: db.prepare('SELECT * FROM keel_sagas WHERE saga = ? AND id = ?'),
    unfinished: db.prepare(
      `SELECT * FROM keel_sagas WHERE saga = ? AND status IN ('running', 'compensating') ORDER BY created_at, id`,
    ),
    // Newest first by the (saga[, status], created_at, id) indexes; a page starts strictly after the cursor
    // (the first page after a cursor past every record), so the range is always one index seek.
    list: db.prepare(
      `SELECT * FROM keel_sagas WHERE saga = @saga AND (created_at, id) < (@afterAt, @afterId)
       ORDER BY created_at DESC, id DESC LIMIT @limit`,
    ),
    listByStatus: db.prepare(
      `SELECT * FROM keel_sagas WHERE saga = @saga AND status = @status AND (created_at, id) < (@afterAt, @afterId)
       ORDER BY created_at DESC, id DESC LIMIT @limit`,
    ),
    // Oldest first: the same indexes read upwards.
    listOldest: db.prepare(
      `SELECT * FROM keel_sagas WHERE saga = @saga AND (created_at, id) > (@afterAt, @afterId)
       ORDER BY created_at, id LIMIT @limit`,
    ),
    listOldestByStatus: db.prepare(
      `SELECT * FROM keel_sagas WHERE saga = @saga AND status = @status AND (created_at, id) > (@afterAt, @afterId)
       ORDER BY created_at, id LIMIT @limit`,
    ),
    // The newest @keep of a status stay; beyond them, or finished before @before, go (oldest first, @limit at a time).
    prune: db.prepare(
      `WITH edge AS (
         SELECT finished_at, id FROM keel_sagas WHERE saga = @saga AND status = @status AND finished_at IS NOT NULL
         ORDER BY finished_at DESC, id DESC LIMIT 1 OFFSET @keep)
       DELETE FROM keel_sagas WHERE saga = @saga AND id IN (
         SELECT id FROM keel_sagas WHERE saga = @saga AND status = @status AND finished_at IS NOT NULL
           AND (finished_at < @before OR (finished_at, id) <= (SELECT finished_at, id FROM edge))
         ORDER BY finished_at, id LIMIT @limit)`,
    ),
    dropSignals: db.prepare('DELETE FROM keel_saga_signals WHERE saga = ? AND id = ?'),
    signal: db.prepare(
      'INSERT INTO keel_saga_signals (saga, id, name, payload, at) VALUES (@saga, @id, @name, @payload, @at)',
    ),
    signals: db.prepare(
      'SELECT seq, saga, id, name, payload, at FROM keel_saga_signals WHERE saga = ? AND id IN (SELECT value FROM json_each(?)) ORDER BY seq',
    ),
  };
}

/** The saga half of the SQLite store, on the database `db()` returns (it throws while the store is closed). */
export function sqliteSagas(db: () => Database.Database): SagaStore {
  const statements = new WeakMap<Database.Database, ReturnType<typeof prepare>>();
  const s = () => {
    const d = db();
    let st = statements.get(d);
    if (!st) statements.set(d, (st = prepare(d)));
    return st;
  };
  // Saves made in the same tick (many sagas at once) share one transaction: one fsync instead of one each.
  const batch = new MicrotaskBatcher<{ record: SagaRecord; done: () => void; failed: (e: unknown) => void }>(
    (items) => {
      try {
        const st = s();
        db().transaction(() => {
          for (const { record } of items) {
            (record.status === 'running' ? st.saveRunning : st.save).run({
              ...record,
              notBefore: record.notBefore ?? null,
              trace: record.trace ?? null,
              history: record.history ?? null,
              branches: record.branches ?? null,
              finishedAt: isFinalSagaStatus(record.status) ? record.updatedAt : null,
            });
            if (isFinalSagaStatus(record.status)) st.dropSignals.run(record.saga, record.id);
          }
        })();
        for (const item of items) item.done();
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
      const row = s().load.get(saga, id) as SagaRow | undefined;
      return row && toRecord(row);
    },
    async unfinishedSagas(saga) {
      return (s().unfinished.all(saga) as SagaRow[]).map(toRecord);
    },
    async listSagas(saga, q) {
      const oldest = q.order === 'oldest';
      const page = {
        saga,
        afterAt: q.after?.createdAt ?? (oldest ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER),
        afterId: q.after?.id ?? '',
        limit: q.limit,
      };
      const st = s();
      const rows = (
        q.status === undefined
          ? (oldest ? st.listOldest : st.list).all(page)
          : (oldest ? st.listOldestByStatus : st.listByStatus).all({ ...page, status: q.status })
      ) as SagaRow[];
      return rows.map(toRecord);
    },
    async pruneSagas(saga, rule) {
      const { changes } = s().prune.run({
        saga,
        status: rule.status,
        // SQLite wants an integer OFFSET: past any table size keeps every record.
        keep: rule.keep === undefined || !Number.isFinite(rule.keep) ? Number.MAX_SAFE_INTEGER : rule.keep,
        before: rule.before ?? null,
        limit: rule.limit,
      });
      return { deleted: changes, busy: false };
    },
    async sendSagaSignal(signal) {
      s().signal.run(signal);
    },
    async sagaSignals(saga, ids) {
      if (ids.length === 0) return [];
      return s().signals.all(saga, JSON.stringify(ids)) as SagaSignal[];
    },
  };
}
