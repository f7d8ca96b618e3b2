import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  type KeelError,
  memoryStore,
  type SagaResult,
  type Store,
  sqliteStore,
} from '../../src/index.js';
import type { SagaStore } from '../../src/stores/sagaStore.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { faultySagaStore, type SagaFault } from '../fixtures/fakeStore.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

/** What a step's calls do: succeed, fail once then succeed, always fail, or return a value the saga cannot keep. */
type RunOutcome = 'ok' | 'flaky' | 'fail' | 'refused';
/** What a compensation's calls do. */
type UndoOutcome = 'ok' | 'flaky' | 'fail';

interface StepPlan {
  compensable: boolean;
  run: RunOutcome;
  undo: UndoOutcome;
}

/** One store call's fault; `stall` waits `ms` of the runtime's clock before it goes through. */
type Fault = 'ok' | 'fail' | 'lost' | { stall: number };

interface Scenario {
  sagas: StepPlan[][];
  /** The faults of the first saga writes, in call order; every later write goes through. */
  faults: Fault[];
  /** Stop the runtime this long (ms of its clock) after the sagas start, with the store down, then restart it. */
  crashAt: number | undefined;
}

const stepPlan: fc.Arbitrary<StepPlan> = fc.record({
  compensable: fc.boolean(),
  run: fc.constantFrom<RunOutcome>('ok', 'ok', 'ok', 'flaky', 'fail', 'refused'),
  undo: fc.constantFrom<UndoOutcome>('ok', 'ok', 'flaky', 'fail'),
});
const fault: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Fault>('ok') },
  { weight: 3, arbitrary: fc.constant<Fault>('fail') },
  { weight: 1, arbitrary: fc.constant<Fault>('lost') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3_000 }).map((ms): Fault => ({ stall: ms })) },
);
const scenario: fc.Arbitrary<Scenario> = fc.record({
  sagas: fc.array(fc.array(stepPlan, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
  faults: fc.array(fault, { maxLength: 16 }),
  crashAt: fc.option(fc.integer({ min: 0, max: 2_000 }), { nil: undefined, freq: 2 }),
});

/** The downstream services: one effect per saga step, keyed by the step's idempotency key. */
class Ledger {
  readonly effects = new Map<string, { applied: boolean; applies: number; undos: number }>();
  private calls = new Map<string, number>();

  /** Counts calls per key (flaky outcomes fail the first one). */
  call(key: string): number {
    const n = (this.calls.get(key) ?? 0) + 1;
    this.calls.set(key, n);
    return n;
  }

  apply(key: string): void {
    const e = this.effects.get(key) ?? { applied: false, applies: 0, undos: 0 };
    // Idempotent by key, as a real service with the key would be: a re-run after a crash changes nothing.
    if (!e.applied && e.applies === 0) {
      e.applied = true;
      e.applies++;
    }
    this.effects.set(key, e);
  }

  undo(key: string): void {
    const e = this.effects.get(key);
    if (!e?.applied) return;
    e.applied = false;
    e.undos++;
  }
}

function stepsOf(plan: StepPlan[], ledger: Ledger) {
  return plan.map((p, i) => {
    const name = `s${i}`;
    return {
      name,
      run: (ctx: { sagaId: string }) => {
        const key = `${ctx.sagaId}:${name}`;
        const n = ledger.call(key);
        if (p.run === 'fail' || (p.run === 'flaky' && n === 1)) throw new Error(`${name} refused`);
        ledger.apply(key);
        return p.run === 'refused' ? { amount: BigInt(n) } : `${name}-ok`;
      },
      ...(p.compensable && {
        compensate: (ctx: { sagaId: string }) => {
          const key = `${ctx.sagaId}:${name}`;
          const n = ledger.call(`${key}:undo`);
          if (p.undo === 'fail' || (p.undo === 'flaky' && n === 1)) throw new Error(`undo ${name} refused`);
          ledger.undo(key);
        },
      }),
    };
  });
}

/** Advances `clock` until every promise settled; fails when nothing can move any more (a saga stuck). */
async function runToEnd(clock: TestClock, all: Promise<unknown>[]): Promise<void> {
  let done = false;
  void Promise.allSettled(all).then(() => (done = true));
  for (let idle = 0; !done; ) {
    await settle();
    if (done) break;
    const next = clock.nextIn;
    if (next === undefined) {
      if (++idle > 200) throw new Error('stuck: no saga settled and no timer is waiting');
      continue;
    }
    idle = 0;
    await clock.advance(Math.max(1, next));
  }
}

interface Durable {
  base(): Store & SagaStore;
  dispose(): void;
}

const durables: Record<'memory' | 'sqlite', () => Durable> = {
  memory: () => {
    const store = memoryStore() as Store & SagaStore;
    return { base: () => store, dispose: () => {} };
  },
  sqlite: () => {
    const path = `${tempPath('saga-faults')}.db`;
    return { base: () => sqliteStore({ path }) as Store & SagaStore, dispose: () => removeDb(path) };
  },
};

type Result = SagaResult<any>;

async function play(s: Scenario, durable: Durable, inspected: boolean) {
  const ledger = new Ledger();
  const clock = new TestClock(0);
  const events = new Map<string, string[]>();
  const life = (base: Store & SagaStore) => {
    const { store, faults } = faultySagaStore(base);
    const rt = createRuntime({ store, clock, onError: () => {}, inspect: inspected ? () => {} : undefined });
    rt.bus.subscribe('saga.>', (p: { sagaId: string }, e) => {
      const list = events.get(p.sagaId) ?? [];
      list.push(e.type.split('.').at(-1) as string);
      events.set(p.sagaId, list);
    });
    const sagas = s.sagas.map((plan, i) =>
      rt.saga(`g${i}`, {
        steps: stepsOf(plan, ledger),
        retry: { maxAttempts: 2, initialDelayMs: 10, jitter: false },
        compensationRetry: { maxAttempts: 2, initialDelayMs: 10, jitter: false },
        shutdownGraceMs: 0,
      }),
    );
    return { rt, faults, sagas };
  };

  const first = life(durable.base());
  first.faults.decide = (_r, n): SagaFault => {
    const f = s.faults[n - 1] ?? 'ok';
    if (typeof f === 'string') return f;
    return new Promise<void>((resolve) => clock.setTimeout(() => resolve(), f.stall));
  };
  await first.rt.start();
  const runs = first.sagas.map((saga, i) => saga.execute({ i }, { id: `x${i}` }));
  let results: Array<Result | KeelError>;
  if (s.crashAt === undefined) {
    await runToEnd(clock, runs);
    results = await Promise.all(runs.map((r) => r.catch((e: KeelError) => e)));
    await first.rt.stop();
  } else {
    // The store goes down and the process stops before it recovers: what execute says, then a restart.
    const crashed = (async () => {
      await clock.advance(s.crashAt as number);
      first.faults.down = true;
      await first.rt.stop();
    })();
    await runToEnd(clock, [...runs, crashed]);
    const before = await Promise.all(runs.map((r) => r.catch((e: KeelError) => e)));
    for (const r of before) {
      // Only the runtime stopping before the store answered can make execute reject, and only with these.
      if (r instanceof Error) expect(['STORE_UNAVAILABLE', 'RUNTIME_STOPPED']).toContain((r as KeelError).code);
    }
    const second = life(durable.base());
    await second.rt.start();
    const again = second.sagas.map((saga, i) => saga.execute({ i }, { id: `x${i}` }));
    await runToEnd(clock, again);
    results = await Promise.all(again.map((r) => r.catch((e: KeelError) => e)));
    await second.rt.stop();
  }
  return { ledger, results, events };
}

function check(s: Scenario, o: Awaited<ReturnType<typeof play>>): string[] {
  return o.results.map((r, i) => {
    // Once the store answers, every execute settles with an outcome.
    if (r instanceof Error) throw r;
    const plan = s.sagas[i] as StepPlan[];
    const id = `x${i}`;
    const effect = (j: number) => o.ledger.effects.get(`${id}:s${j}`);
    // A step's effect happens at most once, and is undone at most once.
    for (let j = 0; j < plan.length; j++) {
      expect(effect(j)?.applies ?? 0).toBeLessThanOrEqual(1);
      expect(effect(j)?.undos ?? 0).toBeLessThanOrEqual(1);
    }
    const happened = plan.map((_p, j) => (effect(j)?.applies ?? 0) === 1);
    if (r.status === 'completed') {
      // Kept: every step happened and none was undone.
      expect(plan.every((p) => p.run === 'ok' || p.run === 'flaky')).toBe(true);
      for (let j = 0; j < plan.length; j++) expect(effect(j)).toMatchObject({ applied: true, undos: 0 });
    } else {
      const failed = Number((r.failedStep as string).slice(1));
      expect(['fail', 'refused']).toContain(plan[failed]?.run);
      // Every step that happened is undone exactly once, listed in reverse order, or still in place for a reason.
      const undone = plan.map((_p, j) => j).filter((j) => happened[j] && (effect(j)?.undos ?? 0) === 1);
      expect(r.compensated).toEqual(undone.map((j) => `s${j}`).reverse());
      for (let j = 0; j < plan.length; j++) {
        if (!happened[j] || undone.includes(j)) continue;
        // Left in place: a step with no undo (a refused one ends the saga failed), or the undo chain stopped.
        expect(!(plan[j] as StepPlan).compensable || r.status === 'failed').toBe(true);
      }
      if (r.status === 'compensated') {
        expect(plan.filter((p, j) => p.compensable && happened[j]).length).toBe(undone.length);
      } else {
        expect(r.status).toBe('failed');
        const refusedNoUndo = plan[failed]?.run === 'refused' && !plan[failed]?.compensable;
        expect(refusedNoUndo || plan.some((p, j) => happened[j] && p.compensable && p.undo === 'fail')).toBe(true);
      }
    }
    // The bus tells the outcome once; store faults add no saga events of their own. Events follow what the
    // store acknowledged, so a process that stops before the store answered may not tell it at all.
    const seen = o.events.get(id) ?? [];
    const told = seen.filter((e) => ['completed', 'compensated', 'failed'].includes(e));
    if (s.crashAt === undefined) expect(told).toEqual([r.status]);
    else expect(told.length === 0 || (told.length === 1 && told[0] === r.status)).toBe(true);
    if (r.status === 'completed') expect(seen).not.toContain('compensating');
    return r.status;
  });
}

describe('sagas under random store faults (writes that fail, get lost or stall) and restarts', () => {
  it.each([
    ['memory', 'uninspected', 150],
    ['memory', 'inspected', 60],
    ['sqlite', 'uninspected', 40],
  ] as const)(
    'every completed step is kept or undone exactly once, and every saga ends (%s store, %s)',
    async (kind, mode, numRuns) => {
      const seen = new Map<string, number>();
      let faultsInjected = 0;
      let crashes = 0;
      await fc.assert(
        fc.asyncProperty(scenario, async (s) => {
          const durable = durables[kind]();
          try {
            const o = await play(s, durable, mode === 'inspected');
            for (const status of check(s, o)) seen.set(status, (seen.get(status) ?? 0) + 1);
            faultsInjected += s.faults.filter((f) => f !== 'ok').length;
            if (s.crashAt !== undefined) crashes++;
          } finally {
            durable.dispose();
          }
        }),
        { numRuns },
      );
      console.log(
        `saga faults property (${kind}, ${mode}): ${numRuns} runs, endings ${JSON.stringify(Object.fromEntries(seen))}, ${faultsInjected} store faults, ${crashes} restarts`,
      );
      // The generator reached every ending, and faults and restarts really happened, else the property proves little.
      expect([...seen.keys()].sort()).toEqual(['compensated', 'completed', 'failed']);
      expect(faultsInjected).toBeGreaterThan(numRuns);
      expect(crashes).toBeGreaterThan(numRuns / 4);
    },
  );
});
