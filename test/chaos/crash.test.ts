import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, sqliteStore } from '../../src/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { eachLine, until } from '../fixtures/wait.js';

const TOTAL = 40;
const child = join(import.meta.dirname, '../fixtures/crashChild.ts');

interface Run {
  proc: ChildProcess;
  acked: Set<number>;
  exited: Promise<NodeJS.Signals | null>;
}

function startChild(db: string, log: string): Run {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, db, log, String(TOTAL)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked = new Set<number>();
  eachLine(proc.stdout!, (line) => {
    if (line.startsWith('E ')) acked.add(Number(line.slice(2)));
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
  return { proc, acked, exited };
}

const delivered = (log: string) =>
  existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number) : [];

describe('crash safety on SQLite (SIGKILL)', () => {
  const files: string[] = [];
  let rt: Runtime | undefined;
  let proc: ChildProcess | undefined;
  afterEach(async () => {
    proc?.kill('SIGKILL');
    await rt?.stop();
    rt = undefined;
    for (const f of files.splice(0)) removeDb(f);
  });

  it.each([
    ['while enqueuing', (acked: number, _done: number) => acked >= 5],
    ['mid-way through processing', (_acked: number, done: number) => done >= 12],
    ['near the end', (_acked: number, done: number) => done >= 32],
  ])('a fresh runtime delivers every acknowledged task after a kill %s', async (_when, killPoint) => {
    const base = tempPath('chaos');
    const db = `${base}.db`;
    const log = `${base}.log`;
    files.push(db, log);
    const run = startChild(db, log);
    proc = run.proc;
    await until(() => killPoint(run.acked.size, delivered(log).length), 20_000, 'the kill point', 2);
    run.proc.kill('SIGKILL');
    expect(await run.exited).toBe('SIGKILL');
    const acked = [...run.acked];
    const before = delivered(log);
    // The kill left work unfinished in the file (else this test proves nothing).
    const peek = sqliteStore({ path: db });
    await peek.open();
    const left = await peek.stats('chaos', Date.now());
    await peek.close();
    expect(left.pending + left.active + left.retrying).toBeGreaterThan(0);

    const again: number[] = [];
    rt = createRuntime({ store: sqliteStore({ path: db }) });
    const q = rt.queue('chaos', {
      concurrency: 4,
      leaseMs: 400,
      handler: async (task) => void again.push((task.payload as { n: number }).n),
    });
    await rt.start();
    await q.drain();
    const all = new Set([...before, ...again]);
    const lost = acked.filter((n) => !all.has(n));
    expect(lost).toEqual([]);
    // Nothing was delivered that was never enqueued, nothing is stuck or dead.
    expect([...all].every((n) => n >= 0 && n < TOTAL)).toBe(true);
    expect(await q.stats()).toMatchObject({ pending: 0, active: 0, retrying: 0, dead: 0 });
    // Redeliveries are at most the tasks that were in flight at the kill.
    const twice = before.filter((n) => again.includes(n));
    expect(twice.length).toBeLessThanOrEqual(4 + 32);
  });
});
