import { durableTasks } from '../durableFanOut.js';
import {
  type DurableBus,
  type DurableEvent,
  type DurableSubscriptionRecord,
  durableQueueName,
  type TaskStore,
  type WatchedDurableBus,
} from '../store.js';

/**
 * Durable bus subscriptions and the event log of the memory store. The store's
 * `enqueue` changes its maps before its first `await`, so each method below
 * runs as one step no other call interleaves with: the memory store's transaction.
 */
export function memoryDurableBus(enqueue: TaskStore['enqueue']): DurableBus & WatchedDurableBus {
  const subs = new Map<string, DurableSubscriptionRecord>();
  let log: DurableEvent[] = [];
  const watchers = new Set<() => void>();
  const changed = () => {
    for (const fn of [...watchers]) fn();
  };

  /** Enqueues `events` on every matching subscription's queue; returns how many tasks. */
  const fanOut = (events: readonly DurableEvent[], now: number, only?: DurableSubscriptionRecord): number => {
    let n = 0;
    for (const sub of only ? [only] : subs.values()) {
      const tasks = durableTasks(sub, events, now);
      if (tasks.length === 0) continue;
      void enqueue(durableQueueName(sub.name), tasks, now);
      n += tasks.length;
    }
    return n;
  };

  return {
    async saveDurable(name, pattern, now, replaySince, groupBy) {
      const existing = subs.get(name);
      if (existing) {
        existing.pattern = pattern;
        if (groupBy === undefined) delete existing.groupBy;
        else existing.groupBy = groupBy;
        changed();
        return false;
      }
      const sub: DurableSubscriptionRecord = {
        name,
        pattern,
        createdAt: now,
        ...(groupBy !== undefined && { groupBy }),
      };
      subs.set(name, sub);
      changed();
      if (replaySince !== undefined) {
        fanOut(
          log.filter((e) => e.time >= replaySince),
          now,
          sub,
        );
      }
      return true;
    },

    async deleteDurable(name) {
      const deleted = subs.delete(name);
      if (deleted) changed();
      return deleted;
    },

    watchDurables(onChange) {
      const fn = () => onChange();
      watchers.add(fn);
      return () => watchers.delete(fn);
    },

    async listDurables() {
      return [...subs.values()].map((s) => ({ ...s })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    async recordEvents(events, now) {
      log.push(...events);
      return fanOut(events, now);
    },

    async pruneEvents(before) {
      const kept = log.filter((e) => e.time >= before);
      const n = log.length - kept.length;
      log = kept;
      return n;
    },
  };
}
