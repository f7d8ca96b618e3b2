/**
 * Durable subscriptions made or deleted in one runtime take effect in the
 * others on Postgres through NOTIFY (issue #16.5), not after their next
 * re-read: every runtime here re-reads only once an hour. A lost LISTEN
 * connection falls back to the poll and the notices come back with it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRuntime, postgresStore, type Runtime } from '../../src/index.js';
import { postgresDurableBus } from '../../src/stores/postgres/durableBus.js';
import type { NotifyHandler } from '../../src/stores/postgres/listen.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';
import { sleep, until } from '../fixtures/wait.js';

const HOUR = 3_600_000;
const fresh = freshSchemas('durwatch');
let apps = 0;

describe.skipIf(!pgAvailable)('Postgres durable subscriptions: changes reach other runtimes by NOTIFY', () => {
  const runtimes: Runtime[] = [];
  afterEach(async () => {
    for (const rt of runtimes.splice(0)) await rt.stop();
  });

  /**
   * Two runtimes on one schema; `b`'s connections carry `app` as their application name. `refreshMs` is
   * the pace of the fallback poll while LISTEN is down (an hour: only a notice can deliver in time).
   */
  async function pair(refreshMs = HOUR) {
    const schema = fresh();
    const app = `keel_durwatch_${process.pid}_${++apps}`;
    const make = (applicationName?: string) => {
      const rt = createRuntime({
        store: postgresStore({ connectionString: PG_URL, schema, ...(applicationName && { applicationName }) }),
        bus: { refreshMs },
      });
      runtimes.push(rt);
      return rt;
    };
    const a = make();
    const b = make(app);
    await Promise.all([a.start(), b.start()]);
    await listening(app);
    return { a, b, app, schema };
  }

  /** Waits until a connection of `app` has run LISTEN (the store's listener), then for its first notice to pass. */
  async function listening(app: string): Promise<void> {
    await until(
      () =>
        withClient(
          async (c) =>
            (
              await c.query(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
                [app],
              )
            ).rows[0].n > 0,
        ),
      15_000,
      `a LISTEN connection of ${app}`,
      20,
    );
    await sleep(50);
  }

  /** Publishes from `from` until `got` has an event: events published before `from` knows the subscription are not recorded. */
  async function publishUntilDelivered(from: Runtime, topic: string, got: unknown[]): Promise<void> {
    let n = 0;
    await until(
      async () => {
        from.bus.publish(topic, { n: n++ });
        await from.bus.flush();
        return got.length > 0;
      },
      15_000,
      `a delivery on ${topic}`,
      20,
    );
  }

  const events = (schema: string) =>
    withClient(
      async (c) => (await c.query(`SELECT count(*)::int AS n FROM "${schema}".bus_events`)).rows[0].n as number,
    );

  it('a subscription made in one runtime is recorded for by another at once, long before its refreshMs', async () => {
    const { a, b } = await pair();
    const got: unknown[] = [];
    a.bus.subscribe('order.*', (p) => void got.push(p), { durable: 'fulfil' });
    // B read the (empty) list at start and re-reads it only in an hour: only the notice tells it.
    await publishUntilDelivered(b, 'order.placed', got);
    expect(got.length).toBeGreaterThan(0);
  });

  it('a deleted subscription is no longer recorded for by another runtime', async () => {
    const { a, b, schema } = await pair();
    const got: unknown[] = [];
    a.bus.subscribe('gone.*', (p) => void got.push(p), { durable: 'gone' });
    await publishUntilDelivered(b, 'gone.one', got);
    expect(await a.bus.unsubscribeDurable('gone')).toBe(true);
    // B logs each publish while it believes the subscription exists; once it heard of the delete, it logs none.
    await until(
      async () => {
        const before = await events(schema);
        b.bus.publish('gone.two', {});
        await b.bus.flush();
        return (await events(schema)) === before;
      },
      15_000,
      'B to stop recording',
      20,
    );
    const settled = await events(schema);
    for (let i = 0; i < 5; i++) b.bus.publish('gone.three', {});
    await b.bus.flush();
    expect(await events(schema)).toBe(settled);
  });

  it('a LISTEN connection terminated again and again falls back to the poll; once it listens again, notices work', async () => {
    // While the connection keeps being killed only the poll can find the new subscription: at refreshMs.
    const { a, b, app } = await pair(200);
    let killed = 0;
    let killing = true;
    const killer = withClient(async (c) => {
      while (killing) {
        const r = await c.query(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
          [app],
        );
        killed += r.rows[0].n as number;
        await sleep(10);
      }
    });
    try {
      await until(() => killed > 0, 15_000, 'the LISTEN connection to be terminated');
      const during: unknown[] = [];
      a.bus.subscribe('during.*', (p) => void during.push(p), { durable: 'during' });
      await publishUntilDelivered(b, 'during.x', during);
    } finally {
      killing = false;
      await killer;
    }
    await listening(app);
    const after: unknown[] = [];
    a.bus.subscribe('after.*', (p) => void after.push(p), { durable: 'after' });
    await publishUntilDelivered(b, 'after.x', after);
    expect(killed).toBeGreaterThan(0);
  });
});

describe('Postgres watchDurables without a listening connection', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** The durable bus over a LISTEN connection the test drives: `say` plays what the connection hears. */
  function watched(pollMs?: number) {
    let heard: NotifyHandler | undefined;
    const bus = postgresDurableBus({
      db: () => {
        throw new Error('no database in this test');
      },
      connect: () => Promise.reject(new Error('no database in this test')),
      schema: '"s"',
      enqueueOn: () => Promise.reject(new Error('no database in this test')),
      channel: 'c',
      listen: () => ({
        listen: (_channel: string, handler: NotifyHandler) => {
          heard = handler;
          return () => {
            heard = undefined;
          };
        },
      }),
    });
    let changes = 0;
    const stop = bus.watchDurables(() => changes++, pollMs);
    return {
      stop,
      say: (payload: string | null | undefined) => heard?.(payload),
      changes: () => changes,
      heard: () => heard !== undefined,
    };
  }

  it('polls every pollMs until the connection listens, then only on notices; polls again while it is lost', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = watched(100);
    vi.advanceTimersByTime(350);
    expect(w.changes()).toBe(3);
    w.say(undefined); // listening: what was missed is re-read once, and the poll stops
    expect(w.changes()).toBe(4);
    vi.advanceTimersByTime(1_000);
    expect(w.changes()).toBe(4);
    w.say('crm-sync');
    expect(w.changes()).toBe(5);
    w.say(null); // dropped: the poll takes over
    vi.advanceTimersByTime(250);
    expect(w.changes()).toBe(7);
    w.say(undefined);
    expect(w.changes()).toBe(8);
    vi.advanceTimersByTime(1_000);
    expect(w.changes()).toBe(8);
    w.say(null);
    w.stop();
    vi.advanceTimersByTime(1_000);
    expect(w.changes()).toBe(8);
    expect(w.heard()).toBe(false);
  });

  it('polls every second when no interval is named (the bus default refreshMs)', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = watched();
    vi.advanceTimersByTime(2_500);
    expect(w.changes()).toBe(2);
    w.stop();
  });
});
