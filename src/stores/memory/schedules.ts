import type { EnqueueResult, FireResult, NewTask, ScheduleRow, Schedules } from '../store.js';

/**
 * Schedules of the memory store. One process owns the data, so the
 * compare-and-set and the enqueue need no lock: the slot moves before the
 * first `await`, and moves back if the enqueue fails.
 */
export function memorySchedules(
  enqueue: (queue: string, tasks: readonly NewTask[], now: number) => Promise<EnqueueResult[]>,
): Schedules {
  const rows = new Map<string, ScheduleRow>();
  const copy = (r: ScheduleRow): ScheduleRow => ({ ...r });
  return {
    async saveSchedule(name, definition, since) {
      const row = rows.get(name);
      if (!row) rows.set(name, { name, definition, lastSlot: since });
      else if (row.definition !== definition) {
        row.definition = definition;
        row.lastSlot = Math.max(row.lastSlot, since);
      }
      return copy(rows.get(name)!);
    },
    async readSchedule(name) {
      const row = rows.get(name);
      return row && copy(row);
    },
    async listSchedules() {
      return [...rows.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(copy);
    },
    async removeSchedule(name) {
      return rows.delete(name);
    },
    async fireSchedule(name, { from, to, queue, tasks }, now): Promise<FireResult> {
      const row = rows.get(name);
      if (!row) return { status: 'gone' };
      if (row.lastSlot !== from) return { status: 'moved' };
      row.lastSlot = to;
      try {
        const results = tasks.length === 0 ? [] : await enqueue(queue, tasks, now);
        return { status: 'fired', results };
      } catch (error) {
        if (rows.get(name) === row && row.lastSlot === to) row.lastSlot = from;
        throw error;
      }
    },
  };
}
