import type Database from 'better-sqlite3';
import { durableTasks } from '../durableFanOut.js';
import {
  type DurableBus,
  type DurableEvent,
  type DurableSubscriptionRecord,
  durableQueueName,
  type EnqueueResult,
  type NewTask,
} from '../store.js';

/** The store's enqueue transaction; called inside another transaction it runs as a savepoint of it. */
type EnqueueTx = (queue: string, tasks: readonly NewTask[], now: number) => EnqueueResult[];

interface SubRow {
  name: string;
  pattern: string;
  created_at: number;
  group_by: string | null;
}

/**
 * Durable bus subscriptions and the event log of the SQLite store. Each method
 * is one IMMEDIATE transaction, so a publish in one process and a subscribe in
 * another never interleave: an event is either logged before the subscription
 * (and replayed by `from: 'earliest'`) or recorded for it.
 */
export function sqliteDurableBus(db: () => Database.Database, enqueue: () => EnqueueTx): DurableBus {
  let prepared: { db: Database.Database; tx: ReturnType<typeof prepare> } | undefined;
  const tx = () => {
    const d = db();
    if (prepared?.db !== d) prepared = { db: d, tx: prepare(d, enqueue) };
    return prepared.tx;
  };
  return {
    async saveDurable(name, pattern, now, replaySince, groupBy) {
      return tx().save.immediate(name, pattern, now, replaySince, groupBy ?? null);
    },
    async deleteDurable(name) {
      return tx().remove.run(name).changes > 0;
    },
    async listDurables() {
      return (tx().list.all() as SubRow[]).map(toRecord);
    },
    async recordEvents(events, now) {
      return tx().record.immediate(events, now);
    },
    async pruneEvents(before) {
      return tx().prune.run(before).changes;
    },
  };
}

function toRecord(r: SubRow): DurableSubscriptionRecord {
  return {
    name: r.name,
    pattern: r.pattern,
    createdAt: r.created_at,
    ...(r.group_by !== null && { groupBy: r.group_by }),
  };
}

function prepare(db: Database.Database, enqueue: () => EnqueueTx) {
  const list = db.prepare('SELECT name, pattern, created_at, group_by FROM keel_durable_subscriptions ORDER BY name');
  const one = db.prepare('SELECT name FROM keel_durable_subscriptions WHERE name = ?');
  const insert = db.prepare(
    'INSERT INTO keel_durable_subscriptions (name, pattern, created_at, group_by) VALUES (?, ?, ?, ?)',
  );
  const move = db.prepare('UPDATE keel_durable_subscriptions SET pattern = ?, group_by = ? WHERE name = ?');
  const logged = db.prepare('SELECT topic, time, envelope FROM keel_bus_events WHERE time >= ? ORDER BY seq');
  const log = db.prepare('INSERT INTO keel_bus_events (topic, time, envelope) VALUES (?, ?, ?)');

  /** Enqueues each event on the queue of every subscription in `subs` that matches it. */
  const fanOut = (subs: readonly SubRow[], events: readonly DurableEvent[], now: number): number => {
    let n = 0;
    for (const sub of subs) {
      const tasks = durableTasks({ pattern: sub.pattern, groupBy: sub.group_by ?? undefined }, events, now);
      if (tasks.length === 0) continue;
      enqueue()(durableQueueName(sub.name), tasks, now);
      n += tasks.length;
    }
    return n;
  };

  return {
    list,
    remove: db.prepare('DELETE FROM keel_durable_subscriptions WHERE name = ?'),
    prune: db.prepare('DELETE FROM keel_bus_events WHERE time < ?'),
    save: db.transaction(
      (name: string, pattern: string, now: number, replaySince: number | undefined, groupBy: string | null) => {
        if (one.get(name)) {
          move.run(pattern, groupBy, name);
          return false;
        }
        insert.run(name, pattern, now, groupBy);
        if (replaySince !== undefined) {
          fanOut(
            [{ name, pattern, created_at: now, group_by: groupBy }],
            logged.all(replaySince) as DurableEvent[],
            now,
          );
        }
        return true;
      },
    ),
    record: db.transaction((events: readonly DurableEvent[], now: number) => {
      for (const e of events) log.run(e.topic, e.time, e.envelope);
      return fanOut(list.all() as SubRow[], events, now);
    }),
  };
}
