import { describe, expect, it } from 'vitest';
import { type SagaStep, sqliteStore } from '../../src/index.js';
import { settle } from '../../src/testing/index.js';
import { deferred } from '../fixtures/deferred.js';
import { sagaRuntimes } from '../fixtures/sagaRuntimes.js';

const { runtime, tempDb } = sagaRuntimes('sagaParallel');

/** createOrder, then reserve and authorise at once, then charge; each effect goes to `journal`. */
function checkout(journal: string[], behaviour: { reserve?: Promise<unknown>; authorise?: Promise<unknown> } = {}) {
  const signals: Record<string, AbortSignal> = {};
  const steps = [
    { name: 'createOrder', run: () => journal.push('create') && 'o', compensate: () => journal.push('undo create') },
    {
      name: 'reserveAndAuthorise',
      parallel: [
        {
          name: 'reserve',
          run: (ctx) => {
            journal.push('reserve');
            signals.reserve = ctx.signal;
            return behaviour.reserve ?? 'r';
          },
          compensate: () => journal.push('undo reserve'),
        },
        {
          name: 'authorise',
          run: (ctx) => {
            journal.push('authorise');
            signals.authorise = ctx.signal;
            return behaviour.authorise ?? 'a';
          },
          compensate: () => journal.push('undo authorise'),
        },
      ],
    },
    { name: 'charge', run: (ctx) => journal.push(`charge ${ctx.results.reserve}/${ctx.results.authorise}`) && 'c' },
  ] as const satisfies readonly SagaStep[];
  return { steps, signals };
}

describe('saga parallel groups', () => {
  it('runs the branches at once; the next step sees both results', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const reserve = deferred<string>();
    const { steps } = checkout(journal, { reserve: reserve.promise });
    const saga = rt.saga('checkout', { steps });
    await rt.start();
    const run = saga.execute(null, { id: 'p' });
    await settle();
    // Both started before either finished.
    expect(journal).toEqual(['create', 'reserve', 'authorise']);
    expect(saga.stateOf('p')).toEqual({ running: { reserveAndAuthorise: { reserve: 'run', authorise: 'done' } } });
    reserve.resolve('r1');
    const r = await run;
    expect(r).toMatchObject({
      status: 'completed',
      results: { createOrder: 'o', reserve: 'r1', authorise: 'a', charge: 'c' },
    });
    expect(journal.at(-1)).toBe('charge r1/a');
  });

  it('a failing branch aborts the running one, undoes the completed ones, then the earlier steps in reverse', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const authorise = deferred<string>();
    const reserve = deferred<string>();
    const { steps, signals } = checkout(journal, { reserve: reserve.promise, authorise: authorise.promise });
    const saga = rt.saga('checkout', { steps, compensationRetry: { maxAttempts: 1 } });
    await rt.start();
    const run = saga.execute(null, { id: 'f' });
    await settle();
    authorise.resolve('a1');
    await settle();
    expect(signals.reserve?.aborted).toBe(false);
    reserve.reject(new Error('out of stock'));
    expect(await run).toMatchObject({
      status: 'compensated',
      failedStep: 'reserve',
      error: { message: 'out of stock' },
      compensated: ['authorise', 'createOrder'],
    });
    expect(journal).toEqual(['create', 'reserve', 'authorise', 'undo authorise', 'undo create']);

    // The other order: authorise fails while reserve still runs; reserve is aborted and not undone.
    const journal2: string[] = [];
    const hang = new Promise<string>(() => {});
    const second = checkout(journal2, { reserve: hang, authorise: Promise.reject(new Error('card declined')) });
    const saga2 = rt.saga('checkout2', { steps: second.steps });
    const r2 = await saga2.execute(null);
    expect(r2).toMatchObject({ status: 'compensated', failedStep: 'authorise', compensated: ['createOrder'] });
    expect(second.signals.reserve?.aborted).toBe(true);
    expect(second.signals.reserve?.reason).toMatchObject({
      code: 'CANCELLED',
      message: expect.stringContaining("'authorise' failed"),
    });
    expect(journal2).toEqual(['create', 'reserve', 'authorise', 'undo create']);
  });

  it('a cancel aborts the running branches and undoes the completed ones', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const { steps, signals } = checkout(journal, { reserve: new Promise(() => {}) });
    const saga = rt.saga('checkout', { steps });
    await rt.start();
    void saga.execute(null, { id: 'c' }).catch(() => {});
    await settle();
    expect(await saga.cancel('c', 'changed mind')).toMatchObject({
      status: 'cancelled',
      failedStep: 'reserveAndAuthorise',
      compensated: ['authorise', 'createOrder'],
    });
    expect(signals.reserve?.reason).toMatchObject({ code: 'CANCELLED' });
    expect(journal).toEqual(['create', 'reserve', 'authorise', 'undo authorise', 'undo create']);
  });

  it('after a crash with one branch done (SQLite), only the unfinished branch runs again', async () => {
    const path = tempDb();
    const journal: string[] = [];
    const rt1 = runtime({ store: sqliteStore({ path }) });
    const first = checkout(journal, { reserve: new Promise(() => {}) });
    const saga1 = rt1.saga('checkout', { steps: first.steps, shutdownGraceMs: 0 });
    await rt1.start();
    void saga1.execute(null, { id: 'k' }).catch(() => {});
    await settle();
    expect(saga1.stateOf('k')).toEqual({ running: { reserveAndAuthorise: { reserve: 'run', authorise: 'done' } } });
    await rt1.stop();

    const rt2 = runtime({ store: sqliteStore({ path }) });
    const saga2 = rt2.saga('checkout', { steps: checkout(journal).steps });
    await rt2.start();
    expect(await saga2.execute(null, { id: 'k' })).toMatchObject({
      status: 'completed',
      results: { reserve: 'r', authorise: 'a', charge: 'c' },
    });
    // authorise ran once (its result was kept); reserve ran again after the restart.
    expect(journal).toEqual(['create', 'reserve', 'authorise', 'reserve', 'charge r/a']);
  });

  it('branches that settle in the same tick: a completion is taken before a failure, so it is undone', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const saga = rt.saga('sync', {
      steps: [
        {
          parallel: [
            {
              name: 'a',
              run: () => {
                throw new Error('a refused');
              },
              compensate: () => journal.push('undo a'),
            },
            { name: 'b', run: () => 'b', compensate: () => journal.push('undo b') },
            { name: 'c', run: () => 'c' },
          ],
        },
      ],
    });
    await rt.start();
    expect(await saga.execute(null)).toMatchObject({
      status: 'compensated',
      failedStep: 'a',
      results: { b: 'b', c: 'c' },
      compensated: ['b'],
    });
    expect(journal).toEqual(['undo b']);
    const ok = rt.saga('allSync', {
      steps: [
        {
          name: 'g',
          parallel: [
            { name: 'x', run: () => 1 },
            { name: 'y', run: () => 2 },
          ],
        },
      ],
    });
    expect(await ok.execute(null)).toMatchObject({ status: 'completed', results: { x: 1, y: 2 } });
  });

  it('refuses bad groups with INVALID_OPTIONS naming the option', () => {
    const rt = runtime();
    const bad: [unknown, RegExp][] = [
      [{ parallel: [{ name: 'a', run: () => 1 }] }, /steps\[0\]\.parallel' must be an array of at least two/],
      [{ parallel: 'x' }, /steps\[0\]\.parallel'/],
      [
        {
          parallel: [
            { name: 'a', run: () => 1 },
            { name: 'b', sleepMs: 1 },
          ],
        },
        /parallel\[1\]' is a sleep step/,
      ],
      [
        {
          parallel: [
            { name: 'a', run: () => 1 },
            { name: 'a', run: () => 1 },
          ],
        },
        /'a' is used by another step/,
      ],
      [
        {
          parallel: [
            { name: 'a', run: () => 1 },
            { name: 'b', run: () => 1 },
          ],
          retry: {},
        },
        /steps\[0\]\.retry'/,
      ],
      [
        {
          name: 'x y',
          parallel: [
            { name: 'a', run: () => 1 },
            { name: 'b', run: () => 1 },
          ],
        },
        /steps\[0\]\.name'/,
      ],
    ];
    for (const [i, [step, message]] of bad.entries()) {
      expect(() => rt.saga(`s${i}`, { steps: [step as never] })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringMatching(message) }),
      );
    }
  });
});
