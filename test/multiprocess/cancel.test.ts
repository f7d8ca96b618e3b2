import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime, postgresStore } from '../../src/index.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';
import { eachLine, until } from '../fixtures/wait.js';

const worker = join(import.meta.dirname, '../fixtures/cancelWorker.ts');

describe.skipIf(!pgAvailable)('cancel across processes on Postgres', () => {
  const schema = uniqueSchema('cx');
  let child: ChildProcess | undefined;
  afterAll(async () => {
    child?.kill('SIGKILL');
    await dropSchema(schema);
  });

  it("a task running in another process aborts at once (NOTIFY, not the lease renewal) and ends 'cancelled'", {
    timeout: 60_000,
  }, async () => {
    // A 60 s lease renews every 20 s: an abort within a few seconds came by NOTIFY.
    const LEASE_MS = 60_000;
    const lines: string[] = [];
    let ready = false;
    child = spawn(process.execPath, ['--import', 'tsx', worker, PG_URL, schema, String(LEASE_MS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    eachLine(child.stdout!, (line) => {
      if (line === 'READY') ready = true;
      else lines.push(line);
    });
    await until(() => ready, 30_000, 'the worker to start');

    const rt = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
    const events: string[] = [];
    rt.bus.subscribe('task.cx.cancelled', (p) => events.push((p as { id: string }).id));
    const q = rt.queue('cx'); // no handler here: this process only enqueues and cancels
    await rt.start();
    try {
      const { id } = await q.enqueue({ n: 1 });
      await until(() => lines.includes(`S ${id}`), 20_000, 'the worker to start the task');
      expect((await q.get(id))!.state).toBe('active');
      const asked = Date.now();
      expect(await q.cancel(id)).toBe('cancelled');
      await until(() => lines.includes(`A ${id} CANCELLED`), 10_000, 'the abort in the worker');
      expect(Date.now() - asked).toBeLessThan(LEASE_MS / 3);
      expect(await q.get(id)).toMatchObject({ state: 'cancelled', attempt: 1 });
      expect(events).toEqual([id]);
      // Not retried, not dead: nothing runs it again.
      await new Promise((r) => setTimeout(r, 300));
      expect(lines.filter((l) => l === `S ${id}`)).toHaveLength(1);
      expect(await q.stats()).toMatchObject({ active: 0, pending: 0, retrying: 0, dead: 0, cancelled: 1 });
      // A pending task cancelled before any process claims it never runs.
      const later = await q.enqueue({ n: 2 }, { delayMs: 2000 });
      expect(await q.cancel(later.id)).toBe('cancelled');
      await new Promise((r) => setTimeout(r, 2500));
      expect(lines.some((l) => l === `S ${later.id}`)).toBe(false);
    } finally {
      await rt.stop();
      child.kill('SIGTERM');
    }
  });
});
