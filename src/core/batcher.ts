/**
 * Gathers the items added in one turn of the event loop and hands them to
 * `write` together at the next microtask: a turn's writes become one store
 * call (one transaction, one round trip) instead of one each.
 */
export class MicrotaskBatcher<T> {
  private items: T[] = [];

  constructor(private readonly write: (items: T[]) => void | Promise<void>) {}

  /** Adds `item` to this turn's batch; the first item of a turn schedules the write. */
  add(item: T): void {
    if (this.items.push(item) === 1) queueMicrotask(() => void this.flush());
  }

  /** Items added and not yet handed to `write`. */
  get size(): number {
    return this.items.length;
  }

  /** Hands what was added so far to `write` now (a close that must not leave a batch behind); nothing when empty. */
  flush(): void | Promise<void> {
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    return this.write(items);
  }
}
