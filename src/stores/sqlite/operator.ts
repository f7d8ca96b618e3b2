import type Database from 'better-sqlite3';
import type { DeadTaskRemoval, QueuePauses } from '../store.js';

/**
 * Operator actions of the SQLite store (issue #19): deleting dead tasks and
 * the pause flag of a queue (`keel_queue_pauses`), which every process on the
 * file obeys (they poll it; SQLite has no notifications).
 */
export function sqliteOperator(db: () => Database.Database): DeadTaskRemoval & QueuePauses {
  return {
    async deleteDead(queue, ids) {
      const d = db();
      const wanted = ids.map(Number).filter((n) => Number.isSafeInteger(n));
      const del = d.prepare(`DELETE FROM keel_tasks WHERE id = ? AND queue = ? AND state = 'dead' RETURNING id`);
      const deleted = d.transaction(() => wanted.flatMap((n) => (del.get(n, queue) ? [String(n)] : [])));
      return [...new Set(deleted.immediate())].sort((a, b) => Number(a) - Number(b));
    },

    async setQueuePaused(queue, paused, now) {
      const d = db();
      if (paused) d.prepare('INSERT OR IGNORE INTO keel_queue_pauses (queue, paused_at) VALUES (?, ?)').run(queue, now);
      else d.prepare('DELETE FROM keel_queue_pauses WHERE queue = ?').run(queue);
    },

    async pausedQueues() {
      const rows = db().prepare('SELECT queue FROM keel_queue_pauses ORDER BY queue').all() as { queue: string }[];
      return rows.map((r) => r.queue);
    },
  };
}
