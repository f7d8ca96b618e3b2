import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime, postgresStore, type Store, sqliteStore } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { parseProm, sampleValue } from './promText.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanup) await c();
});

const stores: Array<[string, () => Store, boolean]> = [
  [
    'sqlite',
    () => {
      const path = `${tempPath('metrics')}.db`;
      cleanup.push(() => removeDb(path));
      return sqliteStore({ path });
    },
    true,
  ],
  [
    'postgres',
    () => {
      const schema = uniqueSchema('metrics');
      cleanup.push(() => dropSchema(schema));
      return postgresStore({ connectionString: PG_URL, schema });
    },
    pgAvailable,
  ],
];

// The wait time starts at the due time the store hands out with each claimed task.
describe.each(stores)('task wait time on %s', (_name, store, available) => {
  it.skipIf(!available)('is measured from the due time the store returns with the claim', async () => {
    const clock = new TestClock(10_000);
    const rt = createRuntime({ clock, store: store(), metrics: true });
    const q = rt.queue('w', { handler: () => {}, pollMs: 1_000_000 });
    await rt.start();
    q.pause();
    await q.enqueue(1);
    await clock.advance(1_500);
    q.resume();
    await settle();
    await q.drain();
    const { samples } = parseProm((await rt.metrics?.scrape()) as string);
    expect(sampleValue(samples, 'keel_task_wait_seconds_sum', { queue: 'w' })).toBe(1.5);
    expect(sampleValue(samples, 'keel_tasks', { queue: 'w', state: 'succeeded' })).toBe(1);
    await rt.stop();
  });
});
