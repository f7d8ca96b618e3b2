import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema, withClient } from '../fixtures/pg.js';
import { eachLine, sleep, until } from '../fixtures/wait.js';

const EVERY_MS = 100;
const worker = join(import.meta.dirname, '../fixtures/scheduleWorker.ts');

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  exited: Promise<NodeJS.Signals | number | null>;
}

/** Every slot a child said it enqueued: slot → [taskId, pid][]. */
const fired = new Map<number, [string, number][]>();

function startChild(schema: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', worker, PG_URL, schema, String(EVERY_MS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  eachLine(proc.stdout!, (line) => {
    if (line === 'READY') return markReady();
    const [kind, slot, id, pid] = line.split(' ');
    if (kind !== 'F') return;
    const list = fired.get(Number(slot)) ?? [];
    fired.set(Number(slot), list);
    list.push([id!, Number(pid)]);
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    proc.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  return { proc, ready, exited };
}

describe.skipIf(!pgAvailable)('three processes run one schedule on Postgres while one is SIGKILLed', () => {
  const schema = uniqueSchema('mps');
  const children: Child[] = [];
  afterAll(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await dropSchema(schema);
  });

  it('enqueues exactly one task per slot, with no slot left out', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 3; i++) children.push(startChild(schema));
    await Promise.all(children.map((c) => c.ready));
    await until(() => fired.size >= 10, 20_000, 'ten slots');
    const victim = children[0]!;
    victim.proc.kill('SIGKILL');
    expect(await victim.exited).toBe('SIGKILL');
    const afterKill = fired.size;
    await until(() => fired.size >= afterKill + 10, 20_000, 'ten more slots after the kill');
    for (const c of children.slice(1)) c.proc.kill('SIGTERM');
    // Both exit by themselves after stop(): the schedules left no timer or socket behind.
    expect(await Promise.all(children.slice(1).map((c) => c.exited))).toEqual([0, 0]);
    await sleep(10);

    const rows = await withClient(async (client) => {
      const { rows } = await client.query(
        `SELECT id::text AS id, key, payload FROM "${schema}".tasks WHERE queue = 'mp-jobs' ORDER BY key`,
      );
      return rows as { id: string; key: string; payload: string }[];
    });
    const slots = rows.map((r) => Date.parse(r.key.slice('schedule:mp:'.length)));
    // One task per slot: no key twice, and every slot between the first and the last.
    expect(new Set(rows.map((r) => r.key)).size).toBe(rows.length);
    const first = Math.min(...slots);
    const last = Math.max(...slots);
    expect(rows.length).toBe((last - first) / EVERY_MS + 1);
    expect(rows.every((r) => JSON.parse(r.payload).from === 'schedule')).toBe(true);
    // What the processes reported agrees with the table: each slot once, by one process.
    for (const [slot, list] of fired) {
      expect(list, `slot ${new Date(slot).toISOString()}`).toHaveLength(1);
      expect(rows.find((r) => r.key === `schedule:mp:${new Date(slot).toISOString()}`)?.id).toBe(list[0]![0]);
    }
    // More than one process did the work.
    expect(new Set([...fired.values()].map((l) => l[0]![1])).size).toBeGreaterThan(1);
  });
});
