import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AnyActorRef, type InspectionEvent, setup } from 'xstate';
import { SagaEngine } from '../../src/actors/saga/engine.js';
import {
  createRuntime,
  type KeelError,
  memoryStore,
  NonRetryableError,
  type Runtime,
  sqliteStore,
} from '../../src/index.js';
import type { SagaMachine } from '../../src/machines/saga.js';
import type { SagaRecord } from '../../src/stores/sagaStore.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { deferred } from '../fixtures/deferred.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const runtimes: Runtime<any>[] = [];
const files: string[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop().catch(() => {});
  for (const f of files.splice(0)) removeDb(f);
});

let inspectMode: (() => void) | undefined;

function runtime(options: Parameters<typeof createRuntime>[0] = {}) {
  const rt = createRuntime({ clock: new TestClock(1_000), onError: () => {}, inspect: inspectMode, ...options });
  runtimes.push(rt);
  return rt;
}

function tempDb(): string {
  const f = `${tempPath('saga')}.db`;
  files.push(f);
  return f;
}

/** Three steps over a journal; `fail` names a step that throws. */
function checkout(journal: string[], fail?: { step?: string; undo?: string }) {
  const step = (name: string, undo: boolean) => ({
    name,
    run: (ctx: { idempotencyKey: string }) => {
      journal.push(`run ${name} ${ctx.idempotencyKey}`);
      if (fail?.step === name) throw new Error(`${name} refused`);
      return `${name}-result`;
    },
    ...(undo && {
      compensate: () => {
        journal.push(`undo ${name}`);
        if (fail?.undo === name) throw new Error(`undo ${name} refused`);
      },
    }),
  });
  return [step('createOrder', true), step('deductInventory', true), step('processPayment', false)] as const;
}

// Every behaviour holds whether the runtime is inspected (each saga then also has a mirror actor) or not.
describe.each([
  ['uninspected', undefined],
  ['inspected, with mirror actors', () => {}],
] as const)('%s', (_mode, inspect) => {
  beforeEach(() => {
    inspectMode = inspect;
  });

  describe('saga: outcomes', () => {
    it('completes every step in order, with results by step name and its events on the bus', async () => {
      const rt = runtime();
      const journal: string[] = [];
      const events: string[] = [];
      rt.bus.subscribe('saga.checkout.>', (_p, e) => {
        events.push(e.type);
      });
      const saga = rt.saga('checkout', { steps: checkout(journal) });
      await rt.start();
      const r = await saga.execute({ cart: ['book'] }, { id: 'c1' });
      expect(r).toEqual({
        status: 'completed',
        sagaId: 'c1',
        results: {
          createOrder: 'createOrder-result',
          deductInventory: 'deductInventory-result',
          processPayment: 'processPayment-result',
        },
      });
      expect(journal).toEqual([
        'run createOrder c1:createOrder',
        'run deductInventory c1:deductInventory',
        'run processPayment c1:processPayment',
      ]);
      await settle();
      expect(events).toEqual([
        'saga.checkout.started',
        'saga.checkout.stepCompleted',
        'saga.checkout.stepCompleted',
        'saga.checkout.stepCompleted',
        'saga.checkout.completed',
      ]);
    });

    it('types results from the steps', async () => {
      const rt = runtime();
      const saga = rt.saga('typed', {
        steps: [
          { name: 'count', run: () => 42 },
          { name: 'check', run: async () => ({ ok: true }) },
        ],
      });
      await rt.start();
      const r = await saga.execute({});
      if (r.status !== 'completed') throw new Error(`expected completed, got ${r.status}`);
      const n: number = r.results.count;
      const ok: boolean = r.results.check.ok;
      // @ts-expect-error there is no step 'missing'
      expect(r.results.missing).toBeUndefined();
      expect([n, ok]).toEqual([42, true]);
    });

    it('compensates only the completed steps, in reverse order', async () => {
      const rt = runtime();
      const journal: string[] = [];
      const saga = rt.saga('checkout', { steps: checkout(journal, { step: 'processPayment' }) });
      await rt.start();
      const r = await saga.execute({}, { id: 'c2' });
      expect(r).toMatchObject({
        status: 'compensated',
        failedStep: 'processPayment',
        compensated: ['deductInventory', 'createOrder'],
        error: expect.objectContaining({ message: 'processPayment refused' }),
      });
      expect(journal.slice(3)).toEqual(['undo deductInventory', 'undo createOrder']);

      const journal2: string[] = [];
      const early = rt.saga('early', { steps: checkout(journal2, { step: 'deductInventory' }) });
      const r2 = await early.execute({});
      expect(r2).toMatchObject({ status: 'compensated', failedStep: 'deductInventory', compensated: ['createOrder'] });
      expect(journal2.filter((j) => j.startsWith('undo'))).toEqual(['undo createOrder']);

      const r3 = await rt.saga('first', { steps: checkout([], { step: 'createOrder' }) }).execute({});
      expect(r3).toMatchObject({ status: 'compensated', failedStep: 'createOrder', compensated: [] });
    });

    it('compensateOnFailure also undoes the failing step itself, first', async () => {
      const rt = runtime();
      const undone: string[] = [];
      const saga = rt.saga('timeouts', {
        steps: [
          { name: 'hold', run: () => 'held', compensate: () => void undone.push('release') },
          {
            name: 'charge',
            compensateOnFailure: true,
            run: () => {
              throw new Error('gateway timed out; the charge may have landed');
            },
            compensate: () => void undone.push('refund'),
          },
        ],
      });
      await rt.start();
      expect(await saga.execute({})).toMatchObject({
        status: 'compensated',
        failedStep: 'charge',
        compensated: ['charge', 'hold'],
      });
      expect(undone).toEqual(['refund', 'release']);
      expect(() => rt.saga('bad', { steps: [{ name: 'a', run: () => 1, compensateOnFailure: true }] })).toThrow(
        /'steps\[0\]\.compensateOnFailure' needs a compensate function/,
      );
    });

    it('ends failed when a compensation keeps failing, and says so on the bus', async () => {
      const clock = new TestClock(0);
      const rt = runtime({ clock });
      const journal: string[] = [];
      const failed = vi.fn();
      rt.bus.subscribe('saga.checkout.failed', failed);
      const saga = rt.saga('checkout', {
        steps: checkout(journal, { step: 'processPayment', undo: 'deductInventory' }),
        compensationRetry: { maxAttempts: 3, initialDelayMs: 100, jitter: false },
      });
      await rt.start();
      const done = saga.execute({}, { id: 'c3' });
      await settle();
      await clock.advance(100);
      await clock.advance(200);
      const r = await done;
      expect(r).toMatchObject({
        status: 'failed',
        failedStep: 'processPayment',
        compensated: [],
        compensationError: expect.objectContaining({ message: 'undo deductInventory refused' }),
      });
      expect(journal.filter((j) => j === 'undo deductInventory')).toHaveLength(3);
      expect(journal).not.toContain('undo createOrder');
      await settle();
      expect(failed).toHaveBeenCalledWith(
        expect.objectContaining({
          sagaId: 'c3',
          failedStep: 'processPayment',
          compensationError: expect.objectContaining({ message: 'undo deductInventory refused' }),
        }),
        expect.anything(),
      );
    });
  });

  describe('saga: retries and timeouts', () => {
    it('retries a step with backoff on the runtime clock; attempt counts and the idempotency key stays', async () => {
      const clock = new TestClock(0);
      const rt = runtime({ clock });
      const seen: Array<{ attempt: number; key: string; at: number }> = [];
      const saga = rt.saga('pay', {
        retry: { maxAttempts: 3, initialDelayMs: 50, multiplier: 2, jitter: false },
        steps: [
          {
            name: 'charge',
            run: (ctx) => {
              seen.push({ attempt: ctx.attempt, key: ctx.idempotencyKey, at: clock.now() });
              if (ctx.attempt < 3) throw new Error('gateway busy');
              return 'charged';
            },
          },
        ],
      });
      await rt.start();
      const done = saga.execute({}, { id: 'p1' });
      await settle();
      await clock.advance(49);
      expect(seen).toHaveLength(1);
      await clock.advance(1);
      expect(seen).toHaveLength(2);
      await clock.advance(100);
      expect(await done).toMatchObject({ status: 'completed', results: { charge: 'charged' } });
      expect(seen).toEqual([
        { attempt: 1, key: 'p1:charge', at: 0 },
        { attempt: 2, key: 'p1:charge', at: 50 },
        { attempt: 3, key: 'p1:charge', at: 150 },
      ]);
    });

    it('a NonRetryableError is not retried', async () => {
      const rt = runtime();
      const run = vi.fn(() => {
        throw new NonRetryableError('card stolen');
      });
      const saga = rt.saga('pay', { retry: { maxAttempts: 5 }, steps: [{ name: 'charge', run }] });
      await rt.start();
      expect(await saga.execute({})).toMatchObject({
        status: 'compensated',
        error: expect.objectContaining({ code: 'NON_RETRYABLE' }),
      });
      expect(run).toHaveBeenCalledTimes(1);
    });

    it('a step over its timeout is aborted, fails with STEP_TIMEOUT and the saga compensates', async () => {
      const clock = new TestClock(0);
      const rt = runtime({ clock });
      let signal: AbortSignal | undefined;
      const undo = vi.fn();
      const saga = rt.saga('slow', {
        stepTimeoutMs: 1_000,
        steps: [
          { name: 'reserve', run: () => 'ok', compensate: undo },
          {
            name: 'ship',
            timeoutMs: 500,
            run: (ctx) => {
              signal = ctx.signal;
              return new Promise(() => {});
            },
          },
        ],
      });
      await rt.start();
      const done = saga.execute({});
      await settle();
      await clock.advance(499);
      expect(signal?.aborted).toBe(false);
      await clock.advance(1);
      const r = await done;
      expect(signal?.aborted).toBe(true);
      expect(r).toMatchObject({
        status: 'compensated',
        failedStep: 'ship',
        error: expect.objectContaining({ code: 'STEP_TIMEOUT' }),
      });
      expect((r as { error: Error }).error.message).toMatch(/'ship' timed out after 500 ms/);
      expect(undo).toHaveBeenCalledTimes(1);
    });
  });

  describe('saga: ids', () => {
    it('execute with the id of a finished saga returns the stored result without running anything', async () => {
      const rt = runtime();
      const journal: string[] = [];
      const saga = rt.saga('checkout', { steps: checkout(journal) });
      await rt.start();
      const first = await saga.execute({ n: 1 }, { id: 'same' });
      const again = await saga.execute({ n: 2 }, { id: 'same' });
      expect(again).toEqual(first);
      expect(journal).toHaveLength(3);
    });

    it('execute with the id of a running saga joins that run', async () => {
      const rt = runtime();
      const gate = deferred<string>();
      const run = vi.fn(() => gate.promise);
      const saga = rt.saga('wait', { steps: [{ name: 'only', run }] });
      await rt.start();
      const a = saga.execute({}, { id: 'w' });
      const b = saga.execute({}, { id: 'w' });
      expect(b).toBe(a);
      expect(saga.running).toBe(1);
      await settle();
      gate.resolve('x');
      expect(await b).toMatchObject({ status: 'completed', results: { only: 'x' } });
      expect(run).toHaveBeenCalledTimes(1);
      expect(saga.running).toBe(0);
    });
  });

  describe('saga: bad input', () => {
    const one = (): number => 1;
    it.each<[string, unknown, string]>([
      ['a.b', { steps: [{ name: 's', run: one }] }, "'name'"],
      ['ok', {}, "'steps'"],
      ['ok', { steps: [] }, "'steps'"],
      ['ok', { steps: [{ name: 'has.dot', run: one }] }, "'steps[0].name'"],
      ['ok', { steps: [{ name: 'completed', run: one }] }, "'steps[0].name'"],
      [
        'ok',
        {
          steps: [
            { name: 's', run: one },
            { name: 's', run: one },
          ],
        },
        "'steps[1].name'",
      ],
      ['ok', { steps: [{ name: 's' }] }, "'steps[0].run'"],
      ['ok', { steps: [{ name: 's', run: one, compensate: 'no' }] }, "'steps[0].compensate'"],
      ['ok', { steps: [{ name: 's', run: one }], stepTimeoutMs: -1 }, "'stepTimeoutMs'"],
      ['ok', { steps: [{ name: 's', run: one }], retry: { maxAttempts: 0 } }, "'retry.maxAttempts'"],
      [
        'ok',
        { steps: [{ name: 's', run: one }], compensationRetry: { multiplier: 'x' } },
        "'compensationRetry.multiplier'",
      ],
      ['ok', { steps: [{ name: 's', run: one, retry: { jitter: 1 } }] }, "'steps[0].retry.jitter'"],
      [
        'ok',
        { steps: [{ name: 's', run: one }], retry: { maxAttemps: 3 } },
        "'retry.maxAttemps' is not a retry option",
      ],
    ])('rejects saga(%j, %j) with INVALID_OPTIONS naming %s', (name, options, option) => {
      const rt = runtime();
      try {
        rt.saga(name, options as never);
        expect.unreachable();
      } catch (e) {
        expect((e as KeelError).code).toBe('INVALID_OPTIONS');
        expect((e as Error).message).toContain(option);
      }
    });

    it('refuses a second saga with the same name', () => {
      const rt = runtime();
      rt.saga('twice', { steps: [{ name: 's', run: () => 1 }] });
      expect(() => rt.saga('twice', { steps: [{ name: 's', run: () => 1 }] })).toThrow(
        expect.objectContaining({ code: 'DUPLICATE_NAME' }),
      );
    });

    it('refuses input that is not plain JSON', async () => {
      const rt = runtime();
      const saga = rt.saga('json', { steps: [{ name: 'a', run: () => 1 }] });
      await rt.start();
      await expect(saga.execute({ when: new Date() })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
      await expect(saga.execute({ n: Number.NaN })).rejects.toThrow(/value\.n is NaN/);
    });
  });

  describe('saga: lifecycle and durability', () => {
    it('a durable store must be started before execute', async () => {
      const rt = runtime({ store: sqliteStore({ path: tempDb() }) });
      const saga = rt.saga('s', { steps: [{ name: 'a', run: () => 1 }] });
      await expect(saga.execute({})).rejects.toMatchObject({ code: 'NOT_STARTED' });
    });

    it('stop interrupts a running saga after the grace period with RUNTIME_STOPPED', async () => {
      const rt = runtime();
      const saga = rt.saga('s', { shutdownGraceMs: 0, steps: [{ name: 'a', run: () => new Promise(() => {}) }] });
      await rt.start();
      const r = saga.execute({});
      await settle();
      await rt.stop();
      await expect(r).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
      await expect(saga.execute({})).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
    });

    it('resumes an unfinished saga on the next start: the step in flight runs again with the same idempotency key', async () => {
      const path = tempDb();
      const runs: string[] = [];
      const steps = (hang: boolean) =>
        [
          {
            name: 'createOrder',
            run: () => {
              runs.push('createOrder');
              return 'order-1';
            },
            compensate: () => {},
          },
          {
            name: 'deductInventory',
            run: (ctx: { idempotencyKey: string; results: Record<string, unknown> }) => {
              runs.push(`${ctx.idempotencyKey} after ${ctx.results.createOrder}`);
              return hang ? new Promise(() => {}) : 'taken';
            },
          },
        ] as const;
      const first = runtime({ store: sqliteStore({ path }) });
      const a = first.saga('checkout', { steps: steps(true), shutdownGraceMs: 0 });
      await first.start();
      const interrupted = a.execute({ cart: 1 }, { id: 'r1' });
      await settle();
      // No grace: the step in flight is cut off and the saga stays unfinished in the file.
      await first.stop();
      await expect(interrupted).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });

      const second = runtime({ store: sqliteStore({ path }) });
      const events: string[] = [];
      second.bus.subscribe('saga.checkout.>', (_p, e) => {
        events.push(e.type);
      });
      const b = second.saga('checkout', { steps: steps(false) });
      await second.start();
      const r = await b.execute({ ignored: true }, { id: 'r1' });
      expect(r).toMatchObject({ status: 'completed', results: { createOrder: 'order-1', deductInventory: 'taken' } });
      expect(runs).toEqual(['createOrder', 'r1:deductInventory after order-1', 'r1:deductInventory after order-1']);
      await settle();
      expect(events).not.toContain('saga.checkout.started');
      expect(events.at(-1)).toBe('saga.checkout.completed');
      expect(await b.execute({}, { id: 'r1' })).toEqual(r);
    });

    it('a resumed saga honours the backoff it was waiting out (deadlines are data)', async () => {
      const path = tempDb();
      const at: number[] = [];
      const clockA = new TestClock(10_000);
      const step = (clock: TestClock) => ({
        name: 'charge',
        run: (ctx: { attempt: number }) => {
          at.push(clock.now());
          if (ctx.attempt < 2) throw new Error('busy');
          return 'ok';
        },
      });
      const retry = { maxAttempts: 3, initialDelayMs: 1_000, jitter: false };
      const first = runtime({ store: sqliteStore({ path }), clock: clockA });
      const a = first.saga('pay', { steps: [step(clockA)], retry, shutdownGraceMs: 0 });
      await first.start();
      a.execute({}, { id: 'b1' }).catch(() => {});
      await settle();
      expect(at).toEqual([10_000]);
      await first.stop();

      const clockB = new TestClock(10_400);
      const second = runtime({ store: sqliteStore({ path }), clock: clockB });
      const b = second.saga('pay', { steps: [step(clockB)], retry });
      await second.start();
      await settle();
      expect(at).toEqual([10_000]);
      await clockB.advance(599);
      expect(at).toEqual([10_000]);
      await clockB.advance(1);
      expect(await b.execute({}, { id: 'b1' })).toMatchObject({ status: 'completed' });
      expect(at).toEqual([10_000, 11_000]);
    });

    it('refuses to resume into a definition whose steps changed, and reports it', async () => {
      const path = tempDb();
      const first = runtime({ store: sqliteStore({ path }) });
      const a = first.saga('s', { steps: [{ name: 'a', run: () => new Promise(() => {}) }], shutdownGraceMs: 0 });
      await first.start();
      a.execute({}, { id: 'v1' }).catch(() => {});
      await settle();
      await first.stop();

      const onError = vi.fn();
      const second = runtime({ store: sqliteStore({ path }), onError });
      const b = second.saga('s', {
        steps: [
          { name: 'a', run: () => 1 },
          { name: 'b', run: () => 2 },
        ],
      });
      await second.start();
      expect(onError).toHaveBeenCalledWith(
        expect.objectContaining({ code: 'SAGA_VERSION_MISMATCH' }),
        expect.stringContaining("'v1'"),
      );
      await expect(b.execute({}, { id: 'v1' })).rejects.toMatchObject({ code: 'SAGA_VERSION_MISMATCH' });
    });
  });
});

describe('one engine whether watched or not', () => {
  /** Everything a saga leaves behind: its checkpoints, its bus events and, when watched, its mirror's states. */
  async function trace(inspect: boolean, fail?: { step?: string; undo?: string }) {
    const store = memoryStore();
    const checkpoints: SagaRecord[] = [];
    const save = store.saveSaga.bind(store);
    store.saveSaga = (record) => {
      checkpoints.push({ ...record });
      return save(record);
    };
    const mirror: unknown[] = [];
    const rt = runtime({
      store,
      inspect: inspect
        ? (ev: InspectionEvent) => {
            const ref = ev.actorRef as AnyActorRef & { systemId?: string };
            if (ev.type === '@xstate.snapshot' && ref.systemId === 'saga.checkout.t1') {
              mirror.push((ev.snapshot as unknown as { value: unknown }).value);
            }
          }
        : undefined,
    });
    const events: Array<{ type: string; data: unknown }> = [];
    rt.bus.subscribe('saga.checkout.>', (_p, e) => {
      events.push({ type: e.type, data: e.data });
    });
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: checkout(journal, fail), compensationRetry: { maxAttempts: 1 } });
    await rt.start();
    const result = await saga.execute({ cart: 1 }, { id: 't1' });
    await settle();
    await rt.stop();
    return { result, checkpoints, events, journal, mirror };
  }

  it.each([
    ['completed', undefined],
    ['compensated', { step: 'processPayment' }],
    ['failed', { step: 'processPayment', undo: 'deductInventory' }],
  ] as const)('%s: the same states, bus events, checkpoints and step calls', async (status, fail) => {
    const plain = await trace(false, fail);
    const watched = await trace(true, fail);
    expect(plain.result.status).toBe(status);
    expect(watched.result).toEqual(plain.result);
    expect(watched.checkpoints).toEqual(plain.checkpoints);
    expect(watched.events).toEqual(plain.events);
    expect(watched.journal).toEqual(plain.journal);
    // The checkpoints are the machine's states in order; the mirror went through exactly those.
    const states = plain.checkpoints
      .map((c) => JSON.parse(c.state))
      .filter((v, i, all) => i === 0 || JSON.stringify(v) !== JSON.stringify(all[i - 1]));
    expect(states.at(-1)).toBe(status);
    expect(watched.mirror).toEqual(states);
    expect(plain.mirror).toEqual([]);
  });

  it('refuses a machine it could not memoise (a guard) or whose actions it cannot perform', () => {
    const guarded = setup({ guards: { ok: () => true } }).createMachine({
      id: 'g',
      initial: 'a',
      states: { a: { on: { go: { guard: 'ok', target: 'b' } } }, b: {} },
    });
    expect(() => new SagaEngine(guarded as unknown as SagaMachine)).toThrow(/guarded transition/);
    const odd = setup({ actions: { shout: () => {} } }).createMachine({
      id: 'o',
      context: {},
      initial: 'a',
      entry: 'shout',
      states: { a: {} },
    });
    const engine = new SagaEngine(odd as unknown as SagaMachine);
    expect(() => engine.start({ sagaId: 'x', input: 1 })).toThrow(/runs 'shout', which the runner cannot perform/);
  });
});
