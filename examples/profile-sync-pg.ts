/**
 * Profile sync on PostgreSQL, with the outbox pattern and two worker processes.
 *
 * Service A keeps profiles in its own table. Each update writes the profile
 * and publishes `profile.updated` in ONE transaction (`publish(topic, payload, { tx })`):
 * the event is recorded for the durable subscription `profile-sync` inside it,
 * so an update that rolls back leaves no event behind and a committed one always
 * reaches the downstream. Two runtimes (standing in for two processes or
 * machines) subscribe durably under that one name, so each event is handled
 * once by either of them (at least once: a crash may repeat one); the
 * downstream fails now and then, so some deliveries retry. The subscription is
 * grouped by user (`groupBy: 'userId'`, `groupConcurrency: 1`): across both
 * runtimes, one user's updates are handled one after another in commit order,
 * through the retries, while different users are handled in parallel. Delivery events
 * cross runtimes on the bus (`bus: ['profile.>']`), so A hears about
 * deliveries made by the other runtime.
 *
 * Run: `npx tsx examples/profile-sync-pg.ts` (Postgres at `KEEL_PG_URL`,
 * default postgres://postgres@127.0.0.1:5432/test). Uses a throwaway schema.
 */
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { createRuntime, postgresStore, type QueueStats } from '../src/index.js';

interface Profile {
  userId: string;
  version: number;
  email: string;
}

/** What a run ends with, for the test. */
export interface ProfileSyncPgResult {
  /** userId → the version A committed last. */
  committed: Map<string, number>;
  /** userId → the version the downstream holds. */
  delivered: Map<string, number>;
  /** userId → every version the downstream was handed, in the order it was (per-user order: only growing). */
  handled: Map<string, number[]>;
  /** Updates that rolled back (their events must not be delivered). */
  rolledBack: number;
  /** `profile.synced` events A heard, by the runtime that delivered them. */
  heardFrom: Record<string, number>;
  stats: QueueStats;
}

/** Runs the scenario in a fresh schema of `connectionString` and drops it afterwards. */
export async function runProfileSyncPg(
  connectionString = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  { users = 5, rounds = 3, log = (_line: string) => {} } = {},
): Promise<ProfileSyncPgResult> {
  const schema = `keel_example_${process.pid}_${Date.now().toString(36)}`;
  const db = new pg.Pool({ connectionString, max: 2 });
  const store = () => postgresStore({ connectionString, schema, bus: ['profile.>'], poolSize: 3 });
  const a = createRuntime({ store: store() }); // service A: writes and enqueues, works too
  const b = createRuntime({ store: store() }); // another process working the same queue
  const delivered = new Map<string, number>();
  const handled = new Map<string, number[]>();
  const heardFrom: Record<string, number> = {};
  try {
    for (const [name, rt] of [
      ['A', a],
      ['B', b],
    ] as const) {
      // One durable subscription, `profile-sync`, subscribed in both runtimes: each event goes to one of them.
      rt.bus.subscribe(
        'profile.updated',
        async (p: Profile) => {
          // A flaky downstream: one call in four fails; the subscription retries with backoff.
          if (Math.random() < 0.25) throw new Error('downstream 503');
          handled.set(p.userId, [...(handled.get(p.userId) ?? []), p.version]);
          // Idempotent and ordered by version, as a downstream must be under at-least-once delivery.
          if ((delivered.get(p.userId) ?? 0) < p.version) delivered.set(p.userId, p.version);
          rt.bus.publish('profile.synced', { userId: p.userId, version: p.version, by: name });
        },
        {
          durable: 'profile-sync',
          // One user's updates one at a time, in order, across both runtimes; users in parallel.
          groupBy: 'userId',
          groupConcurrency: 1,
          concurrency: 4,
          retry: { initialDelayMs: 20, maxDelayMs: 200 },
        },
      );
    }
    a.bus.subscribe('profile.synced', (e: { by: string }) => {
      heardFrom[e.by] = (heardFrom[e.by] ?? 0) + 1;
    });
    await a.start();
    await b.start();
    await db.query(`CREATE TABLE "${schema}".profiles (user_id text PRIMARY KEY, version int, email text)`);

    const committed = new Map<string, number>();
    let rolledBack = 0;
    // The durable subscription's queue: its stats, dead letters and redrive.
    const sync = a.queue('bus:profile-sync');
    for (let round = 1; round <= rounds; round++) {
      for (let u = 1; u <= users; u++) {
        const p: Profile = { userId: `user-${u}`, version: round, email: `user${u}+r${round}@example.com` };
        const client = await db.connect();
        try {
          await client.query('BEGIN');
          await client.query(
            `INSERT INTO "${schema}".profiles VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, email = excluded.email`,
            [p.userId, p.version, p.email],
          );
          await a.bus.publish('profile.updated', p, { tx: client });
          // Every seventh update fails validation after the publish: the rollback takes the event with it.
          if ((round * users + u) % 7 === 0) throw new Error('validation failed');
          await client.query('COMMIT');
          committed.set(p.userId, p.version);
        } catch {
          await client.query('ROLLBACK');
          rolledBack++;
        } finally {
          client.release();
        }
      }
      log(`round ${round}: ${users} updates, ${rolledBack} rolled back so far`);
    }
    await sync.drain();
    // Let the last bus events arrive from B.
    await new Promise((r) => setTimeout(r, 200));
    const stats = await sync.stats();
    log(`delivered: ${stats.succeeded} tasks (A heard ${JSON.stringify(heardFrom)}), ${stats.dead} dead`);
    return { committed, delivered, handled, rolledBack, heardFrom, stats };
  } finally {
    await a.stop();
    await b.stop();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runProfileSyncPg(undefined, { log: (line) => console.log(line) });
  const converged = [...r.committed].every(([id, v]) => (r.delivered.get(id) ?? 0) >= v);
  console.log(
    `profile sync on postgres: ${converged ? 'every committed update reached the downstream' : 'NOT converged'}; ${r.rolledBack} rolled-back updates left no event`,
  );
}
