import { afterEach, describe, expect, it } from 'vitest';
import { keepResult } from '../../src/actors/saga/stepResult.js';
import { createRuntime, type KeelError, memoryStore, type Runtime, type Store, sqliteStore } from '../../src/index.js';
import { settle } from '../../src/testing/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const runtimes: Runtime<any>[] = [];
const files: string[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop().catch(() => {});
  for (const f of files.splice(0)) removeDb(f);
});

const stores: Array<[string, () => Store]> = [
  ['memory', () => memoryStore()],
  [
    'sqlite',
    () => {
      const path = `${tempPath('saga-values')}.db`;
      files.push(path);
      return sqliteStore({ path });
    },
  ],
];
const modes = [
  ['uninspected', undefined],
  ['inspected', () => {}],
] as const;

function runtime(store: Store, inspect: (() => void) | undefined) {
  const rt = createRuntime({ store, inspect, onError: () => {} });
  runtimes.push(rt);
  const events: string[] = [];
  rt.bus.subscribe('saga.s.>', (_p, e) => {
    events.push(e.type.slice('saga.s.'.length));
  });
  return { rt, events };
}

class Receipt {
  constructor(readonly id: string) {}
}

describe('the rule for step results', () => {
  it('keeps what JSON carries the way JSON writes it, and names what it cannot keep', () => {
    const when = new Date('2026-01-02T03:04:05.000Z');
    expect(keepResult({ x: undefined, y: 1 })).toEqual({ ok: true, value: { y: 1 } });
    expect(keepResult({ at: when, list: [when] })).toEqual({
      ok: true,
      value: { at: when.toISOString(), list: [when.toISOString()] },
    });
    expect(keepResult({ money: { toJSON: () => '12.50 EUR' } })).toEqual({ ok: true, value: { money: '12.50 EUR' } });
    expect(keepResult(undefined)).toEqual({ ok: true, value: undefined });
    const proto = JSON.parse('{"__proto__": {"a": 1}}');
    const kept = keepResult(proto);
    expect(kept.ok && JSON.stringify(kept.value)).toBe('{"__proto__":{"a":1}}');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    let deep: unknown = 1;
    for (let i = 0; i < 300; i++) deep = [deep];
    const throwing = {
      get boom() {
        throw new Error('getter');
      },
    };
    for (const [value, problem] of [
      [{ n: 10n }, 'value.n is a bigint'],
      [{ c: cycle }, 'value.c.self is a circular reference'],
      [new Receipt('r1'), 'value is a Receipt (no toJSON)'],
      [{ m: new Map() }, 'value.m is a Map (no toJSON)'],
      [[1, undefined], 'value[1] is undefined'],
      [{ f: () => 1 }, 'value.f is a function'],
      [{ s: Symbol('s') }, 'value.s is a symbol'],
      [{ n: Number.NaN }, 'value.n is NaN'],
      [deep, 'nested deeper than'],
      [throwing, 'could not be read (Error: getter)'],
    ] as const) {
      const k = keepResult(value);
      expect(k.ok).toBe(false);
      expect((k as { problem: string }).problem).toContain(problem);
    }
  });
});

describe.each(stores)('step results (%s store)', (_kind, makeStore) => {
  describe.each(modes)('%s', (_mode, inspect) => {
    it('a result JSON can carry is normalised (undefined fields dropped, Date as ISO string) and kept', async () => {
      const store = makeStore();
      const { rt } = runtime(store, inspect);
      const when = new Date('2026-01-02T03:04:05.000Z');
      const saga = rt.saga('s', {
        steps: [
          { name: 'a', run: () => ({ id: 'o1', note: undefined, at: when }) },
          { name: 'b', run: (ctx) => ctx.results.a },
        ],
      });
      await rt.start();
      const r = await saga.execute({}, { id: 'n1' });
      const kept = { id: 'o1', at: '2026-01-02T03:04:05.000Z' };
      // The next step and the result see what a resumed saga would read back from the store.
      expect(r).toEqual({ status: 'completed', sagaId: 'n1', results: { a: kept, b: kept } });
      expect(await saga.execute({}, { id: 'n1' })).toEqual(r);
    });

    it('a refused result still counts as done: its own compensate runs first, then the earlier ones', async () => {
      const { rt, events } = runtime(makeStore(), inspect);
      const journal: string[] = [];
      const saga = rt.saga('s', {
        steps: [
          { name: 'reserve', run: () => 'held', compensate: () => void journal.push('undo reserve') },
          {
            name: 'charge',
            run: () => {
              journal.push('charged');
              return { amount: 10n };
            },
            compensate: (ctx) => void journal.push(`refund ${ctx.idempotencyKey}`),
          },
          { name: 'ship', run: () => void journal.push('shipped') },
        ],
      });
      await rt.start();
      const r = await saga.execute({}, { id: 'r1' });
      expect(r).toMatchObject({ status: 'compensated', failedStep: 'charge', compensated: ['charge', 'reserve'] });
      const error = (r as { error: KeelError }).error;
      expect(error.code).toBe('INVALID_PAYLOAD');
      expect(error.message).toMatch(
        /step 'charge' returned a result the saga cannot keep \(value\.amount is a bigint\)/,
      );
      expect(journal).toEqual(['charged', 'refund r1:charge:compensate', 'undo reserve']);
      await settle();
      expect(events).toEqual(['started', 'stepCompleted', 'compensating', 'compensated']);
    });

    it('a refused result of a step with no compensate ends the saga failed for an operator, undoing nothing', async () => {
      const { rt, events } = runtime(makeStore(), inspect);
      const journal: string[] = [];
      const saga = rt.saga('s', {
        steps: [
          { name: 'reserve', run: () => 'held', compensate: () => void journal.push('undo reserve') },
          { name: 'pay', run: () => new Receipt('p1') },
        ],
      });
      await rt.start();
      const r = await saga.execute({}, { id: 'r2' });
      expect(r).toMatchObject({
        status: 'failed',
        failedStep: 'pay',
        compensated: [],
        error: expect.objectContaining({ code: 'INVALID_PAYLOAD' }),
        compensationError: expect.objectContaining({ code: 'INVALID_PAYLOAD' }),
      });
      expect(journal).toEqual([]);
      await settle();
      expect(events.at(-1)).toBe('failed');
      expect(await saga.execute({}, { id: 'r2' })).toMatchObject({ status: 'failed', failedStep: 'pay' });
    });
  });
});

const cycle = (): unknown => {
  const o: Record<string, unknown> = { name: 'cyclic' };
  o.self = o;
  return o;
};
const thrown: Array<[string, () => unknown]> = [
  ['a BigInt', () => 10n],
  ['a circular object', cycle],
  ['a Symbol', () => Symbol('odd')],
  ['null', () => null],
  ['undefined', () => undefined],
  ['a 5 MB string', () => 'x'.repeat(5_000_000)],
  [
    'an object whose getter throws',
    () => ({
      get message() {
        throw new Error('no');
      },
    }),
  ],
  [
    'a Proxy that throws on every read',
    () =>
      new Proxy(
        {},
        {
          get: () => {
            throw new Error('trap');
          },
          ownKeys: () => {
            throw new Error('trap');
          },
        },
      ),
  ],
];

describe.each(stores)('any thrown value is survivable (%s store)', (_kind, makeStore) => {
  describe.each(modes)('%s', (_mode, inspect) => {
    it.each(thrown)('a step that throws %s: the saga compensates and execute settles', async (_label, value) => {
      const store = makeStore();
      const { rt, events } = runtime(store, inspect);
      const undone: string[] = [];
      const saga = rt.saga('s', {
        steps: [
          { name: 'a', run: () => 'a', compensate: () => void undone.push('a') },
          {
            name: 'b',
            run: () => {
              throw value();
            },
          },
        ],
      });
      await rt.start();
      const r = await saga.execute({}, { id: 't1' });
      expect(r).toMatchObject({ status: 'compensated', failedStep: 'b', compensated: ['a'] });
      expect(undone).toEqual(['a']);
      await settle();
      expect(events.at(-1)).toBe('compensated');
      const stored = await (
        store as unknown as { loadSaga(s: string, id: string): Promise<{ status: string; context: string }> }
      ).loadSaga('s', 't1');
      expect(stored?.status).toBe('compensated');
      // What is stored about the error is bounded, whatever was thrown.
      expect(stored?.context.length).toBeLessThan(10_000);
      expect(saga.running).toBe(0);
    });

    it.each(thrown)(
      'a compensation that throws %s: the saga ends failed and execute settles',
      async (_label, value) => {
        const store = makeStore();
        const { rt, events } = runtime(store, inspect);
        const saga = rt.saga('s', {
          compensationRetry: { maxAttempts: 2, initialDelayMs: 0 },
          steps: [
            {
              name: 'a',
              run: () => 'a',
              compensate: () => {
                throw value();
              },
            },
            {
              name: 'b',
              run: () => {
                throw new Error('b refused');
              },
            },
          ],
        });
        await rt.start();
        const r = await saga.execute({}, { id: 't2' });
        expect(r).toMatchObject({ status: 'failed', failedStep: 'b', compensated: [] });
        await settle();
        expect(events.at(-1)).toBe('failed');
        const stored = await (
          store as unknown as { loadSaga(s: string, id: string): Promise<{ status: string; context: string }> }
        ).loadSaga('s', 't2');
        expect(stored?.status).toBe('failed');
        expect(stored?.context.length).toBeLessThan(10_000);
      },
    );
  });
});
