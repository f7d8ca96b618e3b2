import { describe, expect, it } from 'vitest';
import { type ProfileSyncResult, runProfileSync } from '../../examples/profile-sync.js';
import type { DemoLog } from '../../src/cli/demoLog.js';
import { sqliteStore } from '../../src/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const quiet: DemoLog = { section() {}, line() {}, summary() {} };

function expectConverged(r: ProfileSyncResult, rounds: number): void {
  for (const service of ['B', 'C', 'D']) {
    // Every service ends with the latest version of every profile.
    for (const [user, version] of r.latest) expect(r.held[service]!.get(user), `${service} ${user}`).toBe(version);
    // Per-user order (groupBy userId, groupConcurrency 1): each user's updates applied one after another, every
    // version in publish order, none skipped as stale behind a later one that overtook it.
    for (const [user, versions] of r.applied[service]!) {
      expect(versions, `${service} ${user}`).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
    }
    expect(r.sameUserAtOnce[service], `${service}: one user's deliveries at once`).toBe(0);
    // Nothing lost: every delivery succeeded, none is dead or left over.
    expect(r.stats[service]).toEqual({
      pending: 0,
      active: 0,
      retrying: 0,
      succeeded: r.enqueued[service],
      dead: 0,
      cancelled: 0,
    });
  }
}

describe('profile sync scenario', () => {
  it('converges with a down-then-flapping service guarded by a breaker, losing nothing', async () => {
    const r = await runProfileSync(quiet, {
      users: 4,
      rounds: 3,
      roundGapMs: 60,
      // Counted in requests, not timed: a loaded machine (slow first fetch) cannot move a delivery out of the outage.
      // C is down, comes back, then fails twice more in a row; D fails two requests.
      failing: {
        C: (n) => n <= 5 || n === 9 || n === 10,
        D: (n) => n === 2 || n === 3,
      },
    });
    expectConverged(r, 3);
    expect(r.enqueued).toEqual({ B: 12, C: 12, D: 12 });
    // Users in parallel: B never fails, and each round's four updates are claimed together.
    expect(r.usersAtOnce.B).toBeGreaterThan(1);
    // The audit schedule ran, and its last audit found every service up to date.
    expect(r.audits.at(-1)).toEqual({ B: 4, C: 4, D: 4 });
    expect(r.breakerEvents).toContain('breaker.svc-C.opened');
    expect(r.breakerEvents.at(-1)).not.toBe('breaker.svc-C.opened');
    // The breaker keeps the down service from a retry storm: a bounded number of requests per delivery.
    expect(r.requests.C).toBeLessThan(r.enqueued.C! * 4);
    expect(r.requests.B).toBe(r.enqueued.B);
  });

  it('converges on a SQLite store too', async () => {
    const path = `${tempPath('profile-sync')}.db`;
    try {
      const r = await runProfileSync(quiet, {
        users: 3,
        rounds: 2,
        roundGapMs: 40,
        outages: { C: [[0, 200]] },
        store: sqliteStore({ path }),
      });
      expectConverged(r, 2);
      expect(r.audits.length).toBeGreaterThan(0);
    } finally {
      removeDb(path);
    }
  });
});
