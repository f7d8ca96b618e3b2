import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';
import { runScript } from '../fixtures/script.js';

describe.skipIf(!pgAvailable)('a process using postgresStore', () => {
  const schema = uniqueSchema('exit');
  afterAll(() => dropSchema(schema));

  it('exits by itself after rt.stop() (queue, saga, bus bridge, LISTEN all released)', {
    timeout: 30_000,
  }, async () => {
    const { code, out } = await runScript(
      join(import.meta.dirname, '../fixtures/exitsAfterStopPg.ts'),
      [PG_URL, schema],
      20_000,
    );
    expect(out).toContain('STOPPED');
    expect(code).toBe(0);
  });
});
