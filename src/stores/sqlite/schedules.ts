import type Database from 'better-sqlite3';
import type { EnqueueResult, FireResult, NewTask, ScheduleRow, Schedules } from '../store.js';

interface Row {
  name: string;
  definition: string;
  last_slot: number;
}

const toRow = (r: Row): ScheduleRow => ({ name: r.name, definition: r.definition, lastSlot: r.last_slot });

/** What the schedules need of the open SQLite store: its connection and its enqueue transaction. */
export interface SqliteScheduleDeps {
  db: Database.Database;
  /** The store's enqueue (a better-sqlite3 transaction: nested in another it runs as a savepoint). */
  enqueue: (queue: string, tasks: readonly NewTask[], now: number) => EnqueueResult[];
}

/**
 * Schedules of the SQLite store. `fireSchedule` is one IMMEDIATE transaction:
 * the compare-and-set on `last_slot` and the enqueue commit or roll back together.
 */
export function sqliteSchedules(open: () => SqliteScheduleDeps): Schedules {
  return {
    async saveSchedule(name, definition, since) {
      const { db } = open();
      const row = db
        .prepare(
          `INSERT INTO keel_schedules (name, definition, last_slot) VALUES (?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,
             last_slot = CASE WHEN definition = excluded.definition THEN last_slot
                              ELSE max(last_slot, excluded.last_slot) END
           RETURNING *`,
        )
        .get(name, definition, since) as Row;
      return toRow(row);
    },
    async readSchedule(name) {
      const row = open().db.prepare('SELECT * FROM keel_schedules WHERE name = ?').get(name) as Row | undefined;
      return row && toRow(row);
    },
    async listSchedules() {
      return (open().db.prepare('SELECT * FROM keel_schedules ORDER BY name').all() as Row[]).map(toRow);
    },
    async removeSchedule(name) {
      return open().db.prepare('DELETE FROM keel_schedules WHERE name = ?').run(name).changes > 0;
    },
    async fireSchedule(name, { from, to, queue, tasks }, now): Promise<FireResult> {
      const { db, enqueue } = open();
      const fire = db.transaction((): FireResult => {
        const moved = db
          .prepare('UPDATE keel_schedules SET last_slot = ? WHERE name = ? AND last_slot = ?')
          .run(to, name, from);
        if (moved.changes === 0) {
          const exists = db.prepare('SELECT 1 FROM keel_schedules WHERE name = ?').get(name);
          return { status: exists ? 'moved' : 'gone' };
        }
        return { status: 'fired', results: tasks.length === 0 ? [] : enqueue(queue, tasks, now) };
      });
      return fire.immediate();
    },
  };
}
