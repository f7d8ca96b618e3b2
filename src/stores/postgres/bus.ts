import { MicrotaskBatcher } from '../../core/batcher.js';
import type { Listener } from './listen.js';
import type { Queryable } from './tasks.js';

/** The part of the runtime's bus the bridge uses. */
export interface BridgedBus {
  publish(topic: string, payload: unknown, options?: { source?: string; bridged?: boolean }): number;
  subscribe(topic: string, handler: (payload: any, event: { type: string; source?: string }) => unknown): () => void;
}

/** Connects a runtime's bus to the others on the schema; resolves to the function that disconnects it (flushing first). */
export type BusBridge = (
  bus: BridgedBus,
  report: (error: unknown, detail: string) => void,
) => Promise<() => Promise<void>>;

/** What the bridge needs from its store. */
export interface BusBridgeOptions {
  db: () => Queryable;
  listen: () => Listener;
  schema: string;
  channel: string;
  tag: string;
  /** This store's id: events it published come back on NOTIFY too, and are skipped. */
  owner: string;
}

/** Rows older than this are deleted: a runtime that was away longer missed them anyway. */
const RETENTION_MS = 5 * 60_000;
const SWEEP_MS = 60_000;
/** Ids already delivered, remembered so a catch-up after a reconnect does not deliver them twice. */
const REMEMBER = 10_000;

interface EventRow {
  id: number;
  publisher: string;
  topic: string;
  payload: string;
  source: string | null;
}

/**
 * The bus across processes. A local publish on a carried topic is written to
 * the `events` table (a tick's publishes in one statement, statements one at a
 * time, so ids follow publish order) and announced by a NOTIFY that carries
 * only `publisher first last`: the payload stays in the table, so its size is
 * not limited by NOTIFY's 8000 bytes. Other runtimes read the rows named and
 * publish them on their own bus. Notifications arrive in commit order and are
 * read one at a time, so each subscriber sees one publisher's events in its
 * publish order. Delivery is at-most-once per runtime, like the local bus.
 */
export function postgresBus(o: BusBridgeOptions, patterns: readonly string[]): BusBridge {
  const s = o.schema;
  const sql = {
    write: `
      WITH ins AS (
        INSERT INTO ${s}.events (publisher, topic, payload, source, time)
        SELECT $1, e.topic, e.payload, e.source, $5
        FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e(topic, payload, source, ord)
        ORDER BY e.ord
        RETURNING id)
      SELECT pg_notify('${o.channel}', $1 || ' ' || min(id) || ' ' || max(id)) FROM ins`,
    read: `SELECT id, publisher, topic, payload, source FROM ${s}.events
      WHERE id BETWEEN $1 AND $2 AND publisher = $3 ORDER BY id`,
    since: `SELECT id, publisher, topic, payload, source FROM ${s}.events
      WHERE id > $1 AND publisher <> $2 ORDER BY id`,
    last: `SELECT coalesce(max(id), 0) AS id FROM ${s}.events`,
    sweep: `DELETE FROM ${s}.events WHERE time < $1`,
  };
  const run = (name: keyof typeof sql, values: unknown[]) =>
    o.db().query({ name: `keel_${o.tag}_bus_${name}`, text: sql[name], values });

  return async (bus, report) => {
    let closed = false;
    let writing: Promise<void> = Promise.resolve();
    let reading: Promise<void> = Promise.resolve();
    let inbound: { topic: string; payload: unknown } | undefined;
    let lastEvent: unknown;
    let maxSeen = (await run('last', [])).rows[0].id as number;
    const seen = new Set<number>();
    // While not listening (at first, and after the connection drops), notifications are missed: `floor` is the
    // last id known to be delivered, and notifications that arrive before the catch-up read wait in `held`, so
    // the catch-up (in id order) comes first and each publisher's events stay in order.
    let floor: number | undefined = maxSeen;
    let held: string[] | undefined = [];

    const deliver = (rows: EventRow[]) => {
      for (const r of rows) {
        if (seen.has(r.id) || r.publisher === o.owner) continue;
        seen.add(r.id);
        if (seen.size > REMEMBER) seen.delete(seen.values().next().value as number);
        if (r.id > maxSeen) maxSeen = r.id;
        let payload: unknown;
        try {
          payload = JSON.parse(r.payload);
        } catch (error) {
          report(error, `bus bridge: event ${r.id} on '${r.topic}' is not JSON`);
          continue;
        }
        inbound = { topic: r.topic, payload };
        try {
          // `bridged`: the publishing runtime recorded it for the durable subscriptions already.
          bus.publish(r.topic, payload, { ...(r.source !== null && { source: r.source }), bridged: true });
        } finally {
          inbound = undefined;
        }
      }
    };

    // Events published in one tick go out in one statement, in publish order.
    const outgoing = new MicrotaskBatcher<{ topic: string; payload: string; source: string | null }>((batch) => {
      writing = writing
        .then(() =>
          run('write', [
            o.owner,
            batch.map((e) => e.topic),
            batch.map((e) => e.payload),
            batch.map((e) => e.source),
            Date.now(),
          ]),
        )
        .then(
          () => {},
          (error) => report(error, `bus bridge: ${batch.length} event(s) could not be sent to other runtimes`),
        );
    });

    const forward = (payload: unknown, event: { type: string; source?: string }) => {
      // The event a remote runtime sent, being delivered here: not ours to send back.
      if (inbound !== undefined && inbound.topic === event.type && inbound.payload === payload) return;
      // Overlapping patterns hand one publish to several subscriptions; it goes out once.
      if (event === lastEvent) return;
      lastEvent = event;
      let text: string;
      try {
        text = JSON.stringify(payload) ?? 'null';
      } catch (error) {
        report(error, `bus bridge: the payload of '${event.type}' is not JSON; not sent to other runtimes`);
        return;
      }
      outgoing.add({ topic: event.type, payload: text, source: event.source ?? null });
    };

    const readOne = async (payload: string) => {
      const [publisher, first, last] = payload.split(' ');
      if (publisher === o.owner || first === undefined || last === undefined) return;
      deliver((await run('read', [Number(first), Number(last), publisher])).rows as EventRow[]);
    };

    const read = (payload: string | null | undefined) => {
      if (closed) return;
      if (payload === null) {
        floor ??= maxSeen;
        held ??= [];
        return;
      }
      if (payload !== undefined && held) {
        held.push(payload);
        return;
      }
      reading = reading.then(async () => {
        if (closed) return;
        try {
          if (payload !== undefined) await readOne(payload);
          // Listening (again): read what was announced meanwhile from the table, then what waited.
          if (payload === undefined) {
            const missed = (await run('since', [floor ?? maxSeen, o.owner])).rows as EventRow[];
            const waiting = held ?? [];
            floor = undefined;
            held = undefined;
            deliver(missed);
            for (const p of waiting) await readOne(p);
          }
        } catch (error) {
          report(error, 'bus bridge: reading events from other runtimes failed');
          // A failed catch-up keeps `floor` and `held`: try again shortly, or everything would wait forever.
          if (payload === undefined && held) setTimeout(() => read(undefined), 500).unref();
        }
      });
    };

    const offs = [...new Set(patterns)].map((p) => bus.subscribe(p, forward));
    const listener = o.listen();
    const unlisten = listener.listen(o.channel, read);
    // rt.start() resolves once this runtime hears the others (a failed attempt retries in the background).
    await listener.ready();
    await reading;
    const sweep = setInterval(() => {
      run('sweep', [Date.now() - RETENTION_MS]).catch((error) =>
        report(error, 'bus bridge: deleting old events failed'),
      );
    }, SWEEP_MS);
    sweep.unref();

    return async () => {
      for (const off of offs) off();
      clearInterval(sweep);
      outgoing.flush();
      await writing;
      closed = true;
      unlisten();
      await reading;
    };
  };
}
