import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createRuntime,
  KeelError,
  memoryStore,
  postgresStore,
  type Runtime,
  type Schedules,
  type Store,
} from '../../src/index.js';
import { TestClock } from '../../src/testing/index.js';
import { freshSchemas, PG_URL, pgAvailable, withClient } from '../fixtures/pg.js';
import { advance, firedEvents, idle, keyOf, storedTasks } from '../fixtures/scheduleKit.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

let runtimes: Runtime[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(runtimes.map((rt) => rt.stop()));
  runtimes = [];
  for (const c of cleanups.splice(0)) await c();
});

function runtimeOn(store: Store, clock: TestClock, errors: unknown[] = []): Runtime {
  // The durable bus re-reads its subscriptions every refreshMs on the runtime clock; `advance` steps through
  // every timer, so a 1 s refresh over simulated days would be hundreds of thousands of steps.
  const rt = createRuntime({ store, clock, onError: (e) => errors.push(e), bus: { refreshMs: 20 * 24 * 3600_000 } });
  runtimes.push(rt);
  return rt;
}

describe.each(sharedStoreKinds().map((k) => [k.name, k] as const))('schedules on %s', (_name, kind) => {
  const fresh = () => {
    const f = kind.fresh();
    cleanups.push(f.cleanup);
    return f;
  };

  it.skipIf(!kind.available)('everyMs: one task per slot, keyed by the slot, with the payload', async () => {
    const { make } = fresh();
    const clock = new TestClock(T0 + 100);
    const store = make();
    const rt = runtimeOn(store, clock);
    const fired = firedEvents(rt, 'tick');
    const s = rt.schedule('tick', { everyMs: 1000, queue: 'ticks', payload: { report: 'daily' } });
    expect(s.name).toBe('tick');
    expect(s.next().getTime()).toBe(T0 + 1000);
    await rt.start();
    await advance(clock, 3000, [s]);
    const tasks = await storedTasks(store, 'ticks', fired, clock.now());
    expect(tasks).toEqual(
      [1, 2, 3].map((k) => ({ key: `schedule:tick:${iso(T0 + k * 1000)}`, payload: { report: 'daily' } })),
    );
    expect(s.next().getTime()).toBe(T0 + 4000);
    expect(await rt.schedules()).toEqual([
      { name: 'tick', everyMs: 1000, queue: 'ticks', nextAt: new Date(T0 + 4000) },
    ]);
  });

  it.skipIf(!kind.available)("a slot's task runs at once in this process, not at the queue's next poll", async () => {
    const { make } = fresh();
    const clock = new TestClock(T0 + 100);
    const rt = runtimeOn(make(), clock);
    const ran: unknown[] = [];
    // An hour between polls: only the schedule's own wake-up can start the task within this test.
    rt.queue('audits', { pollMs: 3_600_000, handler: async (t) => void ran.push(t.payload) });
    const s = rt.schedule('audit', { everyMs: 1000, queue: 'audits', payload: { audit: 1 } });
    await rt.start();
    await advance(clock, 800, [s]);
    expect(ran).toEqual([]);
    await advance(clock, 200, [s]);
    await vi.waitFor(() => expect(ran).toEqual([{ audit: 1 }]), { timeout: 5000, interval: 5 });
  });

  it.skipIf(!kind.available)('three runtimes on one store enqueue exactly one task per slot', async () => {
    const { make } = fresh();
    const clock = new TestClock(T0);
    const rts = [0, 1, 2].map(() => runtimeOn(make(), clock));
    const fired = rts.map((rt) => firedEvents(rt, 'shared'));
    const schedules = rts.map((rt) => rt.schedule('shared', { everyMs: 500, queue: 'jobs' }));
    await Promise.all(rts.map((rt) => rt.start()));
    await advance(clock, 5000, schedules);
    const all = fired.flat();
    const slots = all.flatMap((f) => f.slots).sort((a, b) => a - b);
    expect(slots).toEqual(Array.from({ length: 10 }, (_, i) => T0 + (i + 1) * 500));
    expect(new Set(all.flatMap((f) => f.taskIds)).size).toBe(10);
  });

  it.skipIf(!kind.available)(
    "missed: 'skip' (default) skips what fell while nothing ran, then runs on time",
    async () => {
      const { make } = fresh();
      const clock = new TestClock(T0);
      const first = runtimeOn(make(), clock);
      const s1 = first.schedule('nightly', { everyMs: 1000, queue: 'jobs' });
      await first.start();
      await advance(clock, 2500, [s1]);
      await first.stop();
      // Down from 2500 to 10500: the slots 3000..10000 are missed.
      await clock.advance(8000);
      const store = make();
      const second = runtimeOn(store, clock);
      const fired = firedEvents(second, 'nightly');
      const s2 = second.schedule('nightly', { everyMs: 1000, queue: 'jobs' });
      await second.start();
      await idle([s2]);
      await advance(clock, 1000, [s2]);
      expect(fired.flatMap((f) => f.slots)).toEqual([T0 + 11_000]);
      expect(fired.reduce((n, f) => n + f.skipped, 0)).toBe(1);
      expect(s2.next().getTime()).toBe(T0 + 12_000);
    },
  );

  it.skipIf(!kind.available)("missed: 'latest' enqueues the latest missed slot once, 'all' every one", async () => {
    for (const missed of ['latest', 'all'] as const) {
      const { make } = fresh();
      const clock = new TestClock(T0);
      const first = runtimeOn(make(), clock);
      const s1 = first.schedule('catchup', { everyMs: 1000, queue: 'jobs', missed });
      await first.start();
      await advance(clock, 2500, [s1]);
      await first.stop();
      await clock.advance(8000);
      const store = make();
      const second = runtimeOn(store, clock);
      const fired = firedEvents(second, 'catchup');
      const s2 = second.schedule('catchup', { everyMs: 1000, queue: 'jobs', missed });
      await second.start();
      // The missed slots are due at start: the first wake-up is now.
      await advance(clock, 0, [s2]);
      const expected = missed === 'latest' ? [T0 + 10_000] : Array.from({ length: 8 }, (_, i) => T0 + (i + 3) * 1000);
      expect(
        fired.flatMap((f) => f.slots),
        missed,
      ).toEqual(expected);
      const keys = (await storedTasks(store, 'jobs', fired, clock.now())).map((t) => t.key);
      expect(keys).toEqual(expected.map((slot) => `schedule:catchup:${iso(slot)}`));
    }
  });

  it.skipIf(!kind.available)("missed: 'all' catches up at most 100 slots, the latest ones", async () => {
    const { make } = fresh();
    const clock = new TestClock(T0);
    const first = runtimeOn(make(), clock);
    const s1 = first.schedule('flood', { everyMs: 10, queue: 'jobs', missed: 'all' });
    await first.start();
    await first.stop();
    await clock.advance(5000);
    const second = runtimeOn(make(), clock);
    const fired = firedEvents(second, 'flood');
    const s2 = second.schedule('flood', { everyMs: 10, queue: 'jobs', missed: 'all' });
    await second.start();
    await advance(clock, 0, [s2, s1]);
    const slots = fired.flatMap((f) => f.slots);
    expect(slots).toHaveLength(100);
    expect(slots[0]).toBe(T0 + 4010);
    expect(slots[99]).toBe(T0 + 5000);
  });

  it.skipIf(!kind.available)('cron in a time zone across both DST changes: once a day, at the local time', async () => {
    const { make } = fresh();
    // 02:30 in Berlin: on 29 March it does not exist (runs at 03:00 CEST), on 25 October it comes twice (runs once).
    for (const [start, expected] of [
      ['2026-03-27T12:00:00Z', ['2026-03-28T01:30:00Z', '2026-03-29T01:00:00Z', '2026-03-30T00:30:00Z']],
      ['2026-10-23T12:00:00Z', ['2026-10-24T00:30:00Z', '2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z']],
    ] as const) {
      const clock = new TestClock(Date.parse(start));
      const store = make();
      const rt = runtimeOn(store, clock);
      const fired = firedEvents(rt, `berlin-${start.slice(5, 7)}`);
      const s = rt.schedule(`berlin-${start.slice(5, 7)}`, {
        cron: '30 2 * * *',
        timezone: 'Europe/Berlin',
        queue: 'reports',
      });
      await rt.start();
      await advance(clock, 3 * 24 * 3600_000, [s]);
      expect(fired.flatMap((f) => f.slots).map(iso)).toEqual(expected.map((e) => new Date(e).toISOString()));
      const keys = (await storedTasks(store, 'reports', fired, clock.now())).map((t) => t.key);
      expect(keys).toEqual(expected.map((e) => keyOf(s.name, e)));
      await rt.stop();
    }
  });

  it.skipIf(!kind.available)(
    're-registering a name with another definition replaces it; the same one returns the same schedule',
    async () => {
      const { make } = fresh();
      const clock = new TestClock(T0);
      const rt = runtimeOn(make(), clock);
      const fired = firedEvents(rt, 'r');
      const a = rt.schedule('r', { everyMs: 1000, queue: 'jobs' });
      expect(rt.schedule('r', { everyMs: 1000, queue: 'jobs' })).toBe(a);
      await rt.start();
      await advance(clock, 1000, [a]);
      const b = rt.schedule('r', { cron: '*/5 * * * *', queue: 'other' });
      expect(b).not.toBe(a);
      expect(a.actor.getSnapshot().value).toBe('stopped');
      expect(rt.system.system.get('schedule.r')).toBe(b.actor);
      // Its start (saving the new definition) runs at once, the runtime being started.
      await vi.waitFor(() => expect(b.actor.getSnapshot().value).toBe('waiting'));
      expect(await rt.schedules()).toEqual([
        { name: 'r', cron: '*/5 * * * *', queue: 'other', nextAt: new Date(T0 + 5 * 60_000) },
      ]);
      await advance(clock, 5 * 60_000, [b]);
      expect(fired.map((f) => [f.queue, f.slots])).toEqual([
        ['jobs', [T0 + 1000]],
        ['other', [T0 + 5 * 60_000]],
      ]);
    },
  );

  it.skipIf(!kind.available)(
    'remove() deletes it from the store; a runtime sharing the store stops at its next slot',
    async () => {
      const { make } = fresh();
      const clock = new TestClock(T0);
      const here = runtimeOn(make(), clock);
      const there = runtimeOn(make(), clock);
      const firedThere = firedEvents(there, 'gone');
      const a = here.schedule('gone', { everyMs: 1000, queue: 'jobs' });
      const b = there.schedule('gone', { everyMs: 1000, queue: 'jobs' });
      await Promise.all([here.start(), there.start()]);
      await a.remove();
      expect(a.actor.getSnapshot().value).toBe('removed');
      expect(here.system.system.get('schedule.gone')).toBeUndefined();
      expect(await here.schedules()).toEqual([]);
      await advance(clock, 3000, [b]);
      expect(b.actor.getSnapshot().value).toBe('removed');
      expect(firedThere).toEqual([]);
      // The name can be used again.
      const again = here.schedule('gone', { everyMs: 1000, queue: 'jobs' });
      await vi.waitFor(() => expect(again.actor.getSnapshot().value).toBe('waiting'));
      expect((await here.schedules()).map((s) => s.name)).toEqual(['gone']);
    },
  );

  it.skipIf(!kind.available)('a failed fire is reported and tried again: the slot is not lost', async () => {
    const { make } = fresh();
    const clock = new TestClock(T0);
    const inner = make() as Store & Schedules;
    let failures = 1;
    const store: Store & Schedules = {
      ...inner,
      fireSchedule: (...args) => {
        if (failures-- > 0) return Promise.reject(new KeelError('STORE_UNAVAILABLE', 'fireSchedule failed (test)'));
        return inner.fireSchedule(...args);
      },
    };
    const errors: unknown[] = [];
    const rt = runtimeOn(store, clock, errors);
    const fired = firedEvents(rt, 'flaky');
    const s = rt.schedule('flaky', { everyMs: 5000, queue: 'jobs' });
    await rt.start();
    await advance(clock, 5000, [s]);
    expect(fired).toEqual([]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as KeelError).code).toBe('STORE_UNAVAILABLE');
    await advance(clock, 1000, [s]);
    expect(fired.flatMap((f) => f.slots)).toEqual([T0 + 5000]);
  });

  it.skipIf(!kind.available)('stop() clears its timers; the stored schedule stays', async () => {
    const { make } = fresh();
    const clock = new TestClock(T0);
    const rt = runtimeOn(make(), clock);
    const s = rt.schedule('kept', { everyMs: 1000, queue: 'jobs' });
    await rt.start();
    await advance(clock, 1500, [s]);
    await rt.stop();
    expect(s.actor.getSnapshot().value).toBe('stopped');
    expect(clock.pending).toBe(0);
    const other = runtimeOn(make(), clock);
    await other.start();
    expect((await other.schedules()).map((x) => [x.name, x.nextAt.getTime()])).toEqual([['kept', T0 + 2000]]);
  });
});

describe('schedule options', () => {
  const rt = () => {
    const r = createRuntime({ clock: new TestClock() });
    runtimes.push(r);
    return r;
  };
  const refused = (options: unknown, option: string, text?: string) => {
    let error: unknown;
    try {
      rt().schedule('s', options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeelError);
    expect((error as KeelError).code).toBe('INVALID_OPTIONS');
    expect((error as Error).message).toContain(`'${option}'`);
    if (text !== undefined) expect((error as Error).message).toContain(text);
  };

  it('refuses a bad cron naming the expression', () =>
    refused({ cron: '61 * * * *', queue: 'q' }, 'cron', '61 * * * *'));
  it('refuses a cron with seconds (6 fields)', () => refused({ cron: '*/5 * * * * *', queue: 'q' }, 'cron', 'seconds'));
  it('refuses a cron with 3 fields', () => refused({ cron: '* * *', queue: 'q' }, 'cron', "'* * *'"));
  it('refuses a cron that never fires', () => refused({ cron: '0 0 30 2 *', queue: 'q' }, 'cron', 'never'));
  it('refuses both cron and everyMs', () => refused({ cron: '* * * * *', everyMs: 1000, queue: 'q' }, 'everyMs'));
  it('refuses neither cron nor everyMs', () => refused({ queue: 'q' }, 'cron'));
  it('refuses an unknown key', () => refused({ everyMs: 1000, queue: 'q', every: 5 }, 'every'));
  it('refuses an unknown timezone', () =>
    refused({ cron: '* * * * *', timezone: 'Mars/Olympus', queue: 'q' }, 'timezone', 'Mars/Olympus'));
  it('refuses a timezone with everyMs', () =>
    refused({ everyMs: 1000, timezone: 'Europe/Berlin', queue: 'q' }, 'timezone'));
  it('refuses an unknown missed policy', () =>
    refused({ everyMs: 1000, queue: 'q', missed: 'some' }, 'missed', "'some'"));
  it('refuses a bad everyMs', () => refused({ everyMs: 0.5, queue: 'q' }, 'everyMs', '0.5'));
  it('refuses a missing queue', () => refused({ everyMs: 1000 }, 'queue'));
  it('refuses a queue name that cannot be a topic', () => refused({ everyMs: 1000, queue: 'a.*' }, 'queue'));
  it('refuses a store without schedules', () => {
    const { fireSchedule: _f, ...store } = createRuntime().store as Store & { fireSchedule: unknown };
    const r = createRuntime({ store: store as Store, clock: new TestClock() });
    runtimes.push(r);
    expect(() => r.schedule('s', { everyMs: 1000, queue: 'q' })).toThrow(/does not keep schedules/);
  });
  it('accepts cron nicknames', () => {
    const clock = new TestClock(T0 + 1);
    const r = createRuntime({ clock });
    runtimes.push(r);
    expect(r.schedule('h', { cron: '@hourly', queue: 'q' }).next().getTime()).toBe(T0 + 3600_000);
  });
});

describe('schedule faults', () => {
  it("a stalled wake-up: 'skip' enqueues only the latest due slot, 'all' each one", async () => {
    for (const missed of ['skip', 'all'] as const) {
      const clock = new TestClock(T0);
      const inner = memoryStore() as Store & Schedules;
      let hold: Promise<void> | undefined;
      const store: Store & Schedules = {
        ...inner,
        readSchedule: async (name) => {
          await hold;
          return inner.readSchedule(name);
        },
      };
      const rt = runtimeOn(store, clock);
      const fired = firedEvents(rt, 'stall');
      const s = rt.schedule('stall', { everyMs: 1000, queue: 'jobs', missed });
      await rt.start();
      let release!: () => void;
      hold = new Promise((r) => (release = r));
      // The wake-up for 1000 starts, then the process stalls (the read hangs) while three slots pass.
      await clock.advance(1000);
      expect(s.actor.getSnapshot().value).toBe('firing');
      await clock.advance(2500);
      hold = undefined;
      release();
      await idle([s]);
      expect(
        fired.flatMap((f) => f.slots),
        missed,
      ).toEqual(missed === 'skip' ? [T0 + 3000] : [T0 + 1000, T0 + 2000, T0 + 3000]);
      expect(s.next().getTime()).toBe(T0 + 4000);
    }
  });

  describe.skipIf(!pgAvailable)('on postgres', () => {
    const schemas = freshSchemas('sched');
    it('a connection lost inside the fire transaction is reported; the retry enqueues the slot once', async () => {
      const applicationName = `keel_sched_${process.pid}_${Date.now().toString(36)}`;
      const schema = schemas();
      const store = postgresStore({ connectionString: PG_URL, schema, applicationName, poolSize: 2 });
      const clock = new TestClock(T0);
      const errors: unknown[] = [];
      const rt = runtimeOn(store, clock, errors);
      const fired = firedEvents(rt, 'pg');
      const s = rt.schedule('pg', { everyMs: 5000, queue: 'jobs' });
      await rt.start();
      await withClient(async (locker) => {
        // Hold the schedule's row so the fire's compare-and-set waits inside its transaction ...
        await locker.query('BEGIN');
        await locker.query(`SELECT * FROM "${schema}".schedules WHERE name = 'pg' FOR UPDATE`);
        await clock.advance(5000);
        expect(s.actor.getSnapshot().value).toBe('firing');
        // ... then cut that connection, as a database restart or a network failure would.
        await vi.waitFor(
          async () => {
            const { rows } = await locker.query(
              `SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity
               WHERE application_name = $1 AND wait_event_type = 'Lock'`,
              [applicationName],
            );
            expect(rows).toEqual([{ cut: true }]);
          },
          { timeout: 15_000, interval: 20 },
        );
        await locker.query('COMMIT');
      });
      await idle([s]);
      expect(fired).toEqual([]);
      expect(errors).toHaveLength(1);
      expect((errors[0] as KeelError).code).toBe('STORE_UNAVAILABLE');
      // Tried again 1 s later, before the next slot: the slot is enqueued once.
      await advance(clock, 1000, [s]);
      expect(fired.flatMap((f) => f.slots)).toEqual([T0 + 5000]);
      await advance(clock, 5000, [s]);
      expect(fired.flatMap((f) => f.slots)).toEqual([T0 + 5000, T0 + 10_000]);
      const keys = (await storedTasks(store, 'jobs', fired, clock.now())).map((t) => t.key);
      expect(keys).toEqual([keyOf('pg', iso(T0 + 5000)), keyOf('pg', iso(T0 + 10_000))]);
    });
  });
});
