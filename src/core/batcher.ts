/**
 * Gathers the items added in one turn of the event loop and hands them to
 * `flush` together at the next microtask: a turn's writes become one store
 * call (one transaction, one round trip) instead of one each.
 */
export class MicrotaskBatcher<T> {
  private items: T[] = [];

  constructor(private readonly flush: (items: T[]) => void | Promise<void>) {}

  /** Adds `item` to this turn's batch; the first item of a turn schedules the flush. */
  add(item: T): void {
    if (this.items.push(item) === 1) queueMicrotask(() => void this.flushNow());
  }

  /** Items added and not yet handed to `flush`. */
  get size(): number {
    return this.items.length;
  }

  private flushNow(): void | Promise<void> {
    const items = this.items;
    this.items = [];
    return this.flush(items);
  }
}
