import { describe, expect, it } from 'vitest';
import { type SagaStep, sqliteStore } from '../../src/index.js';
import { settle } from '../../src/testing/index.js';
import { deferred } from '../fixtures/deferred.js';
import { sagaRuntimes } from '../fixtures/sagaRuntimes.js';

const { runtime, tempDb } = sagaRuntimes('sagaChild');

/** A shipping saga (pick, then label) and a checkout whose middle step runs it as a child. */
function sagas(journal: string[], opts: { label?: () => unknown; charge?: () => unknown } = {}) {
  const shipping = [
    {
      name: 'pick',
      run: (ctx) => journal.push(`pick ${ctx.sagaId} ${JSON.stringify(ctx.input)}`) && 'picked',
      compensate: (ctx) => journal.push(`unpick ${ctx.idempotencyKey}`),
    },
    {
      name: 'label',
      run: () => (opts.label ? opts.label() : journal.push('label') && 'L1'),
      compensate: (ctx) => journal.push(`unlabel ${ctx.idempotencyKey}`),
    },
  ] as const satisfies readonly SagaStep[];
  const checkout = [
    { name: 'createOrder', run: () => journal.push('create') && 'o1', compensate: () => journal.push('undo create') },
    { name: 'ship', saga: 'shipping', input: (ctx) => ({ order: ctx.results.createOrder }) },
    { name: 'charge', run: () => (opts.charge ? opts.charge() : journal.push('charge') && 'c1') },
  ] as const satisfies readonly SagaStep[];
  return { shipping, checkout };
}

describe('child sagas', () => {
  it("runs the child under an id derived from the parent's; the step's result is the child's results", async () => {
    const rt = runtime();
    const journal: string[] = [];
    const { shipping, checkout } = sagas(journal);
    rt.saga('shipping', { steps: shipping });
    const saga = rt.saga('checkout', { steps: checkout });
    await rt.start();
    const r = await saga.execute(null, { id: 'p1' });
    expect(r).toMatchObject({ status: 'completed', results: { ship: { pick: 'picked', label: 'L1' }, charge: 'c1' } });
    expect(journal).toEqual(['create', 'pick p1/ship {"order":"o1"}', 'label', 'charge']);
  });

  it('when the parent compensates, the completed child is undone as a whole, then the earlier steps', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const { shipping, checkout } = sagas(journal, {
      charge: () => {
        throw new Error('card declined');
      },
    });
    rt.saga('shipping', { steps: shipping });
    const saga = rt.saga('checkout', { steps: checkout });
    await rt.start();
    expect(await saga.execute(null, { id: 'p2' })).toMatchObject({
      status: 'compensated',
      failedStep: 'charge',
      compensated: ['ship', 'createOrder'],
    });
    expect(journal.slice(-3)).toEqual([
      'unlabel p2/ship:label:compensate',
      'unpick p2/ship:pick:compensate',
      'undo create',
    ]);
  });

  it('a child that fails undoes itself; the parent undoes only its own earlier steps', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const { shipping, checkout } = sagas(journal, {
      label: () => {
        throw new Error('no carrier');
      },
    });
    rt.saga('shipping', { steps: shipping });
    const saga = rt.saga('checkout', { steps: checkout });
    await rt.start();
    expect(await saga.execute(null, { id: 'p3' })).toMatchObject({
      status: 'compensated',
      failedStep: 'ship',
      error: { message: 'no carrier' },
      compensated: ['createOrder'],
    });
    expect(journal).toEqual(['create', 'pick p3/ship {"order":"o1"}', 'unpick p3/ship:pick:compensate', 'undo create']);
  });

  it('cancelling the parent cancels the running child', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const { shipping, checkout } = sagas(journal, { label: () => new Promise(() => {}) });
    const child = rt.saga('shipping', { steps: shipping });
    const saga = rt.saga('checkout', { steps: checkout });
    await rt.start();
    void saga.execute(null, { id: 'p4' }).catch(() => {});
    await settle();
    expect(child.stateOf('p4/ship')).toEqual({ running: 'label' });
    expect(await saga.cancel('p4', 'customer left')).toMatchObject({
      status: 'cancelled',
      compensated: ['createOrder'],
    });
    await settle();
    expect(child.stateOf('p4/ship')).toBeUndefined();
    expect(await child.execute(null, { id: 'p4/ship' })).toMatchObject({ status: 'cancelled', compensated: ['pick'] });
  });

  it('an unknown child saga fails the step with NOT_FOUND', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: sagas(journal).checkout });
    await rt.start();
    expect(await saga.execute(null)).toMatchObject({
      status: 'compensated',
      failedStep: 'ship',
      error: { code: 'NOT_FOUND', message: expect.stringContaining("no saga 'shipping'") },
    });
  });

  it("after a crash between the child's end and the parent's next step (SQLite), the parent re-joins it", async () => {
    const path = tempDb();
    const journal: string[] = [];
    const gate = deferred<string>();
    const rt1 = runtime({ store: sqliteStore({ path }) });
    const first = sagas(journal, { charge: () => gate.promise });
    rt1.saga('shipping', { steps: first.shipping, shutdownGraceMs: 0 });
    const saga1 = rt1.saga('checkout', { steps: first.checkout, shutdownGraceMs: 0 });
    await rt1.start();
    void saga1.execute(null, { id: 'p5' }).catch(() => {});
    await settle();
    expect(saga1.stateOf('p5')).toEqual({ running: 'charge' });
    await rt1.stop();

    // Stored as if the process died after the child ended, before the parent saved its step past the child.
    const raw = sqliteStore({ path });
    await raw.open();
    const record = await raw.loadSaga('checkout', 'p5');
    if (!record) throw new Error('the parent was not stored');
    const context = JSON.parse(record.context) as { results: Record<string, unknown> };
    expect(context.results.ship).toEqual({ pick: 'picked', label: 'L1' });
    delete context.results.ship;
    await raw.saveSaga({ ...record, state: JSON.stringify({ running: 'ship' }), context: JSON.stringify(context) });
    expect((await raw.loadSaga('shipping', 'p5/ship'))?.status).toBe('completed');
    await raw.close();

    const rt2 = runtime({ store: sqliteStore({ path }) });
    const again = sagas(journal);
    rt2.saga('shipping', { steps: again.shipping });
    const saga2 = rt2.saga('checkout', { steps: again.checkout });
    await rt2.start();
    expect(await saga2.execute(null, { id: 'p5' })).toMatchObject({
      status: 'completed',
      results: { ship: { pick: 'picked', label: 'L1' } },
    });
    // The child ran once: the resumed parent took its stored result; then the parent went on to charge.
    expect(journal).toEqual(['create', 'pick p5/ship {"order":"o1"}', 'label', 'charge']);
  });

  it('refuses a bad child step with INVALID_OPTIONS', () => {
    const rt = runtime();
    expect(() => rt.saga('a', { steps: [{ name: 's', saga: 'no such!' }] as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining("'steps[0].saga'") }),
    );
    expect(() => rt.saga('b', { steps: [{ name: 's', saga: 'x', input: 1 }] as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining("'steps[0].input'") }),
    );
    expect(() => rt.saga('c', { steps: [{ name: 's', saga: 'x', compensate: () => {} }] as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining("'steps[0].compensate'") }),
    );
  });
});
