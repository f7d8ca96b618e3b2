import { describe, expect, it } from 'vitest';
import { runProfileSyncPg } from '../../examples/profile-sync-pg.js';
import { PG_URL, pgAvailable } from '../fixtures/pg.js';

describe.skipIf(!pgAvailable)('examples/profile-sync-pg', () => {
  it('committed updates reach the downstream, rolled-back ones leave no task, bus events cross runtimes', async () => {
    const r = await runProfileSyncPg(PG_URL, { users: 5, rounds: 3 });
    expect(r.rolledBack).toBeGreaterThan(0);
    expect(r.delivered).toEqual(r.committed);
    // Per-user order through both runtimes and the retries: each user's versions were handed over only growing.
    for (const [user, versions] of r.handled) {
      expect(versions, user).toEqual([...new Set(versions)].sort((a, b) => a - b));
    }
    expect(r.stats).toMatchObject({ pending: 0, active: 0, retrying: 0, dead: 0 });
    expect(r.stats.succeeded).toBe(15 - r.rolledBack);
    // A heard every delivery once: its own locally, the other runtime's through Postgres.
    expect(Object.values(r.heardFrom).reduce((x, y) => x + y, 0)).toBe(r.stats.succeeded);
  });
});
