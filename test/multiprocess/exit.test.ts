import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';

describe.skipIf(!pgAvailable)('a process using postgresStore', () => {
  const schema = uniqueSchema('exit');
  afterAll(() => dropSchema(schema));

  it('exits by itself after rt.stop() (queue, saga, bus bridge, LISTEN all released)', {
    timeout: 30_000,
  }, async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'exitsAfterStop.ts'), PG_URL, schema],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(out).toContain('STOPPED');
    expect(code).toBe(0);
  });
});
