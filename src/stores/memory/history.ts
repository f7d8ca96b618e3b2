import type { TaskQuery, TaskRecord } from '../store.js';

/**
 * The ids of one queue's tasks that finished in one state, oldest first: the
 * memory store's pruner takes from the front. An id pushed again (a redriven
 * task that died again) or removed (redriven) leaves a stale entry behind,
 * which `peek` skips; `size` counts only the current ones.
 */
export class FinishedList {
  private entries: number[] = [];
  private head = 0;
  /** Absolute index of entries[0]: entries are compacted away from the front. */
  private base = 0;
  /** id → index of its current entry. */
  private readonly at = new Map<number, number>();

  get size(): number {
    return this.at.size;
  }

  push(id: number): void {
    this.at.set(id, this.base + this.entries.length);
    this.entries.push(id);
  }

  /** The id of the oldest current entry, or undefined when there is none. */
  peek(): number | undefined {
    while (this.head < this.entries.length) {
      const id = this.entries[this.head]!;
      if (this.at.get(id) === this.base + this.head) return id;
      this.advance();
    }
    return undefined;
  }

  /** Drops the oldest current entry (call after `peek`). */
  shift(): void {
    const id = this.peek();
    if (id === undefined) return;
    this.at.delete(id);
    this.advance();
  }

  /** The task left this state (redriven). */
  remove(id: number): void {
    this.at.delete(id);
  }

  private advance(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }
}

/** True when `rec` passes the filter of `query` (its state as read at the time of the query). */
export function matches(rec: TaskRecord, query: TaskQuery): boolean {
  if (query.state !== undefined && rec.state !== query.state) return false;
  if (query.key !== undefined && rec.key !== query.key) return false;
  if (query.group !== undefined && rec.group !== query.group) return false;
  return true;
}
