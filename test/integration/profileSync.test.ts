import { describe, expect, it } from 'vitest';
import { type ProfileSyncResult, runProfileSync } from '../../examples/profile-sync.js';
import type { DemoLog } from '../../src/cli/demoLog.js';
import { sqliteStore } from '../../src/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const quiet: DemoLog = { section() {}, line() {}, summary() {} };

function expectConverged(r: ProfileSyncResult): void {
  for (const service of ['B', 'C', 'D']) {
    // Every service ends with the latest version of every profile.
    for (const [user, version] of r.latest) expect(r.held[service]!.get(user), `${service} ${user}`).toBe(version);
    // A stale version never overwrote a newer one: applied versions only grow.
    for (const versions of r.applied[service]!.values()) {
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect(new Set(versions).size).toBe(versions.length);
    }
    // Nothing lost: every delivery succeeded, none is dead or left over.
    expect(r.stats[service]).toEqual({ pending: 0, active: 0, retrying: 0, succeeded: r.enqueued[service], dead: 0 });
  }
}

describe('profile sync scenario', () => {
  it('converges with a down-then-flapping service guarded by a breaker, losing nothing', async () => {
    const r = await runProfileSync(quiet, {
      users: 4,
      rounds: 3,
      roundGapMs: 60,
      outages: {
        C: [
          [0, 300],
          [400, 480],
          [560, 640],
        ],
        D: [[100, 180]],
      },
    });
    expectConverged(r);
    expect(r.enqueued).toEqual({ B: 12, C: 12, D: 12 });
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
      expectConverged(r);
    } finally {
      removeDb(path);
    }
  });
});
