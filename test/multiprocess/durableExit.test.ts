/**
 * `rt.stop()` records the publishes not recorded yet for durable
 * subscriptions, and releases everything durable subscriptions hold (the
 * refresh timer, store handles), so the process exits by itself.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';
import { runScript } from '../fixtures/script.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const script = join(import.meta.dirname, '../fixtures/durableExitsAfterStop.ts');

describe('durable subscriptions and rt.stop()', () => {
  it('sqlite: the stop records what was published, and the process exits by itself', { timeout: 30_000 }, async () => {
    const path = `${tempPath('durable-exit')}.db`;
    try {
      const { code, out } = await runScript(script, [path], 20_000);
      expect(out).toContain('GOT {"n":1}');
      expect(out).toContain('STOPPED');
      expect(code).toBe(0);
    } finally {
      removeDb(path);
    }
  });

  describe.skipIf(!pgAvailable)('postgres', () => {
    const schema = uniqueSchema('durable_exit');
    afterAll(() => dropSchema(schema));
    it('the stop records what was published, and the process exits by itself', { timeout: 30_000 }, async () => {
      const { code, out } = await runScript(script, [PG_URL, schema], 20_000);
      expect(out).toContain('GOT {"n":1}');
      expect(out).toContain('STOPPED');
      expect(code).toBe(0);
    });
  });
});
