import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, type SagaInfo } from '../../src/index.js';
import { dropSchema, PG_URL, pgAvailable, uniqueSchema } from '../fixtures/pg.js';
import {
  CRASH_SAGA_ID,
  type CrashScenario,
  crashStore,
  defineCrashSagas,
  effects,
} from '../fixtures/sagaCrashPoints.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { eachLine } from '../fixtures/wait.js';

const childScript = join(import.meta.dirname, '../fixtures/sagaCrashPointsChild.ts');
const LEASE_MS = 1_000;

/** Each scenario: how the saga ends after the crash, every effect once, and states its history shows. */
const expected: Record<CrashScenario, { before: string[]; status: string; effects: string[]; states: string[] }> = {
  sleep: {
    before: ['run a'],
    status: 'completed',
    effects: ['run a', 'run b'],
    states: ['running.a', 'running.nap', 'running.b', 'completed'],
  },
  wait: {
    before: ['run a'],
    status: 'completed',
    effects: ['run a', 'run b'],
    states: ['running.a', 'running.approval', 'running.b', 'completed'],
  },
  parallel: {
    before: ['run a', 'run fast'],
    status: 'compensated',
    effects: ['run a', 'run fast', 'run slow', 'undo slow', 'undo fast', 'undo a'],
    states: ['running.a', 'running.charge', 'compensating.slow', 'compensating.fast', 'compensating.a', 'compensated'],
  },
  child: {
    before: ['run a', 'run pick', 'run label'],
    status: 'completed',
    effects: ['run a', 'run pick', 'run label', 'run b'],
    states: ['running.a', 'running.ship', 'running.b', 'completed'],
  },
};

for (const storeKind of ['sqlite', 'postgres'] as const) {
  describe.skipIf(storeKind === 'postgres' && !pgAvailable)(
    `a saga SIGKILLed at a crash point resumes and ends correctly, each effect once (${storeKind})`,
    () => {
      const cleanups: (() => Promise<void> | void)[] = [];
      let rt: Runtime<any> | undefined;
      afterEach(async () => {
        await rt?.stop().catch(() => {});
        rt = undefined;
        for (const c of cleanups.splice(0)) await c();
      });

      it.each(['sleep', 'wait', 'parallel', 'child'] as const)('%s', { timeout: 60_000 }, async (scenario) => {
        const file = `${tempPath(`crash-${scenario}`)}.effects`;
        cleanups.push(() => removeDb(file));
        let where: string;
        if (storeKind === 'sqlite') {
          where = `${tempPath(`crash-${scenario}`)}.db`;
          cleanups.push(() => removeDb(where));
        } else {
          const schema = uniqueSchema('crash');
          where = `pg:${schema}`;
          cleanups.push(() => dropSchema(schema));
        }
        const proc = spawn(
          process.execPath,
          ['--import', 'tsx', childScript, where, PG_URL, String(LEASE_MS), scenario, file],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        const exited = new Promise<NodeJS.Signals | null>((resolve) =>
          proc.on('exit', (_c, signal) => resolve(signal)),
        );
        if (scenario !== 'child') {
          await new Promise<void>((resolve, reject) => {
            eachLine(proc.stdout!, (line) => line === 'READY' && resolve());
            exited.then(() => reject(new Error('the child ended before its crash point')));
          });
          proc.kill('SIGKILL');
        }
        // `child` kills itself between the child saga's end and the parent's next checkpoint.
        expect(await exited).toBe('SIGKILL');
        const before = effects(file);
        // The killed process got exactly to the crash point.
        expect(before).toEqual(expected[scenario].before);
        rt = createRuntime({ store: crashStore(where, PG_URL, LEASE_MS), onError: () => {} });
        const order = defineCrashSagas(rt, scenario, file, 'resume');
        await rt.start();
        if (scenario === 'wait') await order.signal(CRASH_SAGA_ID, 'approved', { ok: true });
        const result = await order.execute(null, { id: CRASH_SAGA_ID });
        const want = expected[scenario];
        expect(result.status).toBe(want.status);
        const all = effects(file);
        // Every effect happened, and exactly once across both processes.
        expect([...all].sort()).toEqual([...want.effects].sort());
        // What the killed process had done was kept, not done again.
        for (const line of before) expect(all.filter((l) => l === line)).toHaveLength(1);
        if (want.status === 'compensated') expect(all.slice(-3)).toEqual(['undo slow', 'undo fast', 'undo a']);
        const info = (await order.get(CRASH_SAGA_ID)) as SagaInfo;
        expect(info.status).toBe(want.status);
        const states = info.history.map((h) => h.state);
        for (const s of want.states) expect(states).toContain(s);
        if (scenario === 'parallel') {
          expect(states.some((s) => /^running\.group\(.*fast\.done.*\)$/.test(s))).toBe(true);
          expect(info.history.at(-1)).toMatchObject({ state: 'compensated', error: { message: 'charge refused' } });
        }
        if (scenario === 'child') {
          const shipping = rt.saga('shipping', { version: 'probe', steps: [{ name: 'x', run: () => 0 }] });
          expect(await shipping.get(`${CRASH_SAGA_ID}/ship`)).toMatchObject({ status: 'completed' });
        }
      });
    },
  );
}
