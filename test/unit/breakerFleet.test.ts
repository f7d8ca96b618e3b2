import { afterEach, describe, expect, it } from 'vitest';
import {
  type Breaker,
  type BreakerOptions,
  CircuitOpenError,
  createRuntime,
  postgresStore,
  type Runtime,
} from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { until } from '../fixtures/wait.js';
import { FakeFleet } from './breakerFleetFake.js';

let runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.map((rt) => rt.stop()));
  runtimes = [];
});

const base: BreakerOptions = {
  scope: 'fleet',
  fleetSyncMs: 10,
  failureThreshold: 2,
  resetTimeoutMs: 100,
  callTimeoutMs: 50,
  halfOpenMaxCalls: 1,
};

async function fleetOf(n: number, options: BreakerOptions = base) {
  const clock = new TestClock(0);
  const fleet = new FakeFleet();
  const members: Breaker[] = [];
  const events: string[] = [];
  for (let i = 0; i < n; i++) {
    const rt = createRuntime({ clock, store: fleet.store(), onError: () => {} });
    runtimes.push(rt);
    rt.bus.subscribe('breaker.sms.>', (_p, e) => {
      events.push(`${i}:${e.type.slice('breaker.sms.'.length)}`);
    });
    members.push(rt.breaker('sms', options));
    await rt.start();
  }
  await settle();
  return { clock, fleet, members, events };
}

const down = () => Promise.reject(new Error('down'));
const hang = () => new Promise(() => {});

describe("scope 'fleet' (in-memory fleet store)", () => {
  it('counts failures of every process, and opens every process within fleetSyncMs', async () => {
    const { clock, members } = await fleetOf(3);
    await members[0]!.call(down).catch(() => {});
    await members[1]!.call(down).catch(() => {});
    // Neither process has reached the threshold by itself; the fleet has, once the counts are flushed.
    expect(members.map((m) => m.state)).toEqual(['closed', 'closed', 'closed']);
    await clock.advance(10);
    await settle();
    expect(members.map((m) => m.state)).toEqual(['open', 'open', 'open']);
    const refused = await members[2]!.call(() => 'x').catch((e) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused.retryAfterMs).toBe(100);
  });

  it('admits halfOpenMaxCalls trials for the whole fleet per open period, and a failed trial opens the next one for all', async () => {
    const { clock, fleet, members } = await fleetOf(3, { ...base, halfOpenMaxCalls: 2 });
    await members[0]!.call(down).catch(() => {});
    await members[0]!.call(down).catch(() => {});
    await clock.advance(10);
    await settle();
    await clock.advance(100);
    await settle();
    expect(members.map((m) => m.state)).toEqual(['halfOpen', 'halfOpen', 'halfOpen']);
    let reached = 0;
    const trial = () => {
      reached++;
      return new Promise(() => {});
    };
    const results = members.map((m) => m.call(trial).catch((e) => e));
    const extra = members[0]!.call(trial).catch((e) => e);
    await settle();
    // Each process has a free local slot; the fleet grants two in all.
    expect(reached).toBe(2);
    const refused = (await Promise.race([Promise.all([results[2], extra]), settle().then(() => [])])) as unknown[];
    expect(refused.filter((e) => e instanceof CircuitOpenError)).toHaveLength(2);
    expect(fleet.rows.get('sms')?.trials).toHaveLength(2);
    // The trials hang and time out: the first failure opens the next period everywhere.
    await clock.advance(50);
    await settle();
    expect(members.map((m) => m.state)).toEqual(['open', 'open', 'open']);
    expect(fleet.rows.get('sms')).toMatchObject({ state: 'open', period: 2, trials: [] });
  });

  it('closes every process when a trial succeeds in one', async () => {
    const { clock, members, events } = await fleetOf(2);
    await members[1]!.call(down).catch(() => {});
    await members[1]!.call(down).catch(() => {});
    await clock.advance(110);
    await settle();
    expect(await members[0]!.call(() => 'sent')).toBe('sent');
    await settle();
    expect(members.map((m) => m.state)).toEqual(['closed', 'closed']);
    expect(events.filter((e) => e.endsWith('closed')).sort()).toEqual(['0:closed', '1:closed']);
  });

  it('falls back to local counting while the store is out of reach, says so, and rejoins', async () => {
    const { clock, fleet, members, events } = await fleetOf(2);
    fleet.down = true;
    await settle();
    await members[0]!.call(down).catch(() => {});
    await clock.advance(10);
    await settle();
    expect(members[0]!.stats.fleet).toBe('local');
    expect(events).toContain('0:fleetLost');
    // Local now: this process's own failures open it, the other process does not hear of it.
    await members[0]!.call(down).catch(() => {});
    await settle();
    expect(members.map((m) => m.state)).toEqual(['open', 'closed']);
    fleet.down = false;
    // The store's notifications resume: both rejoin at once (else the probe every 10 × fleetSyncMs would).
    await settle();
    expect(members.map((m) => m.stats.fleet)).toEqual(['joined', 'joined']);
    expect(events).toContain('0:fleetJoined');
    // The local open became the fleet's: the other process opened too.
    expect(members[1]!.state).toBe('open');
    expect(fleet.rows.get('sms')).toMatchObject({ state: 'open', period: 1 });
  });

  it('reset() in one process closes the fleet, and stop/dispose free the link', async () => {
    const { clock, fleet, members } = await fleetOf(2);
    await members[0]!.call(down).catch(() => {});
    await members[0]!.call(down).catch(() => {});
    await clock.advance(10);
    await settle();
    expect(members[1]!.state).toBe('open');
    members[0]!.reset();
    await settle();
    expect(members.map((m) => m.state)).toEqual(['closed', 'closed']);
    expect(fleet.rows.get('sms')?.state).toBe('closed');
    members[0]!.dispose();
    members[1]!.dispose();
    expect(clock.pending).toBe(0);
  });
});

const schema = freshSchemas('fleet');

describe.skipIf(!pgAvailable)("scope 'fleet' on Postgres", () => {
  it('shares the counts, the open and the trial budget between runtimes on one schema', {
    timeout: 20_000,
  }, async () => {
    const s = schema();
    const members: Breaker[] = [];
    for (let i = 0; i < 3; i++) {
      const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema: s, poolSize: 2 }) });
      runtimes.push(rt);
      members.push(rt.breaker('sms', { ...base, fleetSyncMs: 20, resetTimeoutMs: 300, callTimeoutMs: 2000 }));
      await rt.start();
    }
    await until(() => members.every((m) => m.stats.fleet === 'joined'), 5000, 'every member joined');
    await members[0]!.call(down).catch(() => {});
    await members[1]!.call(down).catch(() => {});
    await until(() => members.every((m) => m.state === 'open'), 2000, 'the fleet opened everywhere');
    await until(() => members.every((m) => m.state === 'halfOpen'), 2000, 'half-open everywhere');
    let reached = 0;
    const results = members.map((m) =>
      m
        .call(() => {
          reached++;
          return hang();
        })
        .catch((e) => e),
    );
    const settled = await Promise.all(
      results.map((r) => Promise.race([r, new Promise((ok) => setTimeout(() => ok('held'), 500))])),
    );
    expect(reached).toBe(1);
    expect(settled.filter((e) => e instanceof CircuitOpenError)).toHaveLength(2);
  });
});
