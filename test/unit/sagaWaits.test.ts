import { describe, expect, it, vi } from 'vitest';
import { createRuntime, type SagaStep, sqliteStore } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { deferred } from '../fixtures/deferred.js';
import { sagaRuntimes } from '../fixtures/sagaRuntimes.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';

const { runtime, tempDb, cleanups, track } = sagaRuntimes('sagaWaits');

/** A checkout whose payment step waits until the test lets it go; `journal` records every effect. */
function shop(journal: string[]) {
  const payment = deferred<unknown>();
  let paymentSignal: AbortSignal | undefined;
  const steps = [
    {
      name: 'createOrder',
      run: () => journal.push('create') && 'order-1',
      compensate: () => {
        journal.push('undo create');
      },
    },
    {
      name: 'reserve',
      run: () => journal.push('reserve') && 'r-1',
      compensate: () => {
        journal.push('undo reserve');
      },
    },
    {
      name: 'pay',
      run: (ctx: { signal: AbortSignal }) => {
        journal.push('pay');
        paymentSignal = ctx.signal;
        return payment.promise;
      },
    },
  ] as const satisfies readonly SagaStep[];
  return { steps, payment, signal: () => paymentSignal };
}

describe('saga cancel', () => {
  it('aborts the running step with CANCELLED, undoes what completed in reverse and ends cancelled', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const { steps, signal } = shop(journal);
    const events: { type: string; payload: unknown }[] = [];
    rt.bus.subscribe('saga.checkout.>', (payload, e) => {
      events.push({ type: e.type, payload });
    });
    const saga = rt.saga('checkout', { steps });
    await rt.start();
    const run = saga.execute({ cart: 1 }, { id: 'c1' });
    await settle();
    expect(saga.stateOf('c1')).toEqual({ running: 'pay' });
    const cancelled = await saga.cancel('c1', 'customer asked');
    expect(signal()?.aborted).toBe(true);
    expect(signal()?.reason).toMatchObject({ code: 'CANCELLED', message: expect.stringContaining('customer asked') });
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      sagaId: 'c1',
      failedStep: 'pay',
      reason: 'customer asked',
      compensated: ['reserve', 'createOrder'],
      error: { code: 'CANCELLED' },
    });
    expect(await run).toEqual(cancelled);
    expect(journal).toEqual(['create', 'reserve', 'pay', 'undo reserve', 'undo create']);
    expect(events.at(-1)).toEqual({
      type: 'saga.checkout.cancelled',
      payload: { sagaId: 'c1', step: 'pay', reason: 'customer asked', compensated: ['reserve', 'createOrder'] },
    });
    // Finished: the stored result says cancelled, and a second cancel is refused with a code.
    expect(await saga.execute({ cart: 1 }, { id: 'c1' })).toMatchObject({ status: 'cancelled' });
    await expect(saga.cancel('c1')).rejects.toMatchObject({ code: 'SAGA_FINISHED' });
  });

  it('refuses an unknown id with NOT_FOUND and a finished saga with SAGA_FINISHED', async () => {
    const rt = runtime();
    const saga = rt.saga('checkout', { steps: [{ name: 'a', run: () => 1 }] });
    await rt.start();
    await expect(saga.cancel('nobody')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining("'nobody'"),
    });
    await saga.execute(null, { id: 'done' });
    await expect(saga.cancel('done', 'late')).rejects.toMatchObject({
      code: 'SAGA_FINISHED',
      message: expect.stringContaining('completed'),
    });
    await expect(saga.cancel('done', 42 as never)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });

  it('a saga already compensating ends compensated: the cancel does not change its course', async () => {
    const rt = runtime();
    const undo = deferred<void>();
    const saga = rt.saga('checkout', {
      steps: [
        { name: 'a', run: () => 1, compensate: () => undo.promise },
        {
          name: 'b',
          run: () => {
            throw new Error('no');
          },
        },
      ],
      compensationRetry: { maxAttempts: 1 },
    });
    await rt.start();
    const run = saga.execute(null, { id: 'x' });
    await settle();
    expect(saga.stateOf('x')).toEqual({ compensating: 'a' });
    const cancel = saga.cancel('x');
    await settle();
    undo.resolve();
    expect(await cancel).toMatchObject({ status: 'compensated', failedStep: 'b' });
    expect(await run).toMatchObject({ status: 'compensated' });
  });

  it('a step that already completed when the cancel came is undone; the cancel found it before the next step', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const second = deferred<string>();
    const saga = rt.saga('checkout', {
      steps: [
        { name: 'a', run: () => journal.push('a'), compensate: () => journal.push('undo a') },
        { name: 'b', run: () => second.promise, compensate: () => journal.push('undo b'), compensateOnFailure: true },
        { name: 'c', run: () => journal.push('c') },
      ],
    });
    await rt.start();
    const run = saga.execute(null, { id: 'y' });
    await settle();
    // b may have landed though it was aborted: with compensateOnFailure it is undone too.
    const cancelled = await saga.cancel('y', 'stop');
    expect(cancelled).toMatchObject({ status: 'cancelled', failedStep: 'b', compensated: ['b', 'a'] });
    second.resolve('late');
    await settle();
    expect(journal).toEqual(['a', 'undo b', 'undo a']);
    expect(await run).toEqual(cancelled);
  });
});

describe('saga durable sleep', () => {
  const sleepy = (journal: string[], sleepMs: number) =>
    [
      { name: 'createOrder', run: () => journal.push('create') && 'o', compensate: () => journal.push('undo create') },
      { name: 'coolDown', sleepMs },
      { name: 'ship', run: () => journal.push('ship') && 's' },
    ] as const satisfies readonly SagaStep[];

  it('waits sleepMs on the runtime clock, then goes on', async () => {
    const clock = new TestClock(1_000);
    const rt = runtime({ clock });
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: sleepy(journal, 60_000) });
    await rt.start();
    const run = saga.execute(null, { id: 'z' });
    await settle();
    expect(saga.stateOf('z')).toEqual({ running: 'coolDown' });
    await clock.advance(59_999);
    expect(saga.stateOf('z')).toEqual({ running: 'coolDown' });
    await clock.advance(1);
    expect(await run).toMatchObject({ status: 'completed', results: { createOrder: 'o', ship: 's' } });
    expect(journal).toEqual(['create', 'ship']);
  });

  it('sleeps until the time until(ctx) returns, from the input', async () => {
    const clock = new TestClock(1_000);
    const rt = runtime({ clock });
    const saga = rt.saga('reminder', {
      steps: [
        { name: 'wait', until: (ctx) => (ctx.input as { at: number }).at },
        { name: 'send', run: () => 'sent' },
      ],
    });
    await rt.start();
    const run = saga.execute({ at: 11_000 }, { id: 'r' });
    await clock.advance(9_999);
    expect(saga.stateOf('r')).toEqual({ running: 'wait' });
    await clock.advance(1);
    expect(await run).toMatchObject({ status: 'completed' });
  });

  it('an until() that throws or returns no time fails the step, and the saga compensates', async () => {
    const rt = runtime();
    const saga = rt.saga('reminder', {
      steps: [
        { name: 'a', run: () => 1, compensate: () => {} },
        { name: 'wait', until: () => Number.NaN },
      ],
    });
    await rt.start();
    expect(await saga.execute(null)).toMatchObject({
      status: 'compensated',
      failedStep: 'wait',
      compensated: ['a'],
      error: { code: 'INVALID_OPTIONS', message: expect.stringContaining('until() must return a finite epoch ms') },
    });
  });

  it('asleep across a restart (SQLite), it wakes on time: not earlier, not again from the start', async () => {
    const path = tempDb();
    const journal: string[] = [];
    const clock1 = new TestClock(1_000);
    const rt1 = runtime({ clock: clock1, store: sqliteStore({ path }) });
    const saga1 = rt1.saga('checkout', { steps: sleepy(journal, 60_000) });
    await rt1.start();
    const first = saga1.execute(null, { id: 'long' });
    await settle();
    expect(saga1.stateOf('long')).toEqual({ running: 'coolDown' });
    // A sleeping saga does not hold stop() for its grace period: its deadline is stored.
    await rt1.stop();
    await expect(first).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });

    const clock2 = new TestClock(31_000); // 30 s later
    const rt2 = runtime({ clock: clock2, store: sqliteStore({ path }) });
    const saga2 = rt2.saga('checkout', { steps: sleepy(journal, 60_000) });
    await rt2.start();
    await settle();
    expect(saga2.stateOf('long')).toEqual({ running: 'coolDown' });
    await clock2.advance(29_999);
    expect(saga2.stateOf('long')).toEqual({ running: 'coolDown' });
    await clock2.advance(1);
    expect(await saga2.execute(null, { id: 'long' })).toMatchObject({ status: 'completed' });
    expect(journal).toEqual(['create', 'ship']);
  });

  it('a cancel wakes a sleeping saga and leaves no timer behind', async () => {
    const clock = new TestClock(1_000);
    const rt = runtime({ clock });
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: sleepy(journal, 3_600_000) });
    await rt.start();
    void saga.execute(null, { id: 'n' }).catch(() => {});
    await settle();
    const timers = clock.pending;
    expect(await saga.cancel('n', 'no longer needed')).toMatchObject({
      status: 'cancelled',
      failedStep: 'coolDown',
      compensated: ['createOrder'],
    });
    expect(clock.pending).toBe(timers - 1);
    expect(journal).toEqual(['create', 'undo create']);
  });
});

describe('saga signals', () => {
  const webhook = (journal: string[], timeoutMs?: number) =>
    [
      { name: 'createOrder', run: () => journal.push('create') && 'o', compensate: () => journal.push('undo create') },
      { name: 'payment', waitFor: 'payment.confirmed', ...(timeoutMs !== undefined && { timeoutMs }) },
      { name: 'ship', run: (ctx) => journal.push(`ship ${JSON.stringify(ctx.results.payment)}`) && 's' },
    ] as const satisfies readonly SagaStep[];

  it("the signal's payload is the waiting step's result", async () => {
    const rt = runtime();
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: webhook(journal) });
    await rt.start();
    const run = saga.execute(null, { id: 'p' });
    await settle();
    expect(saga.stateOf('p')).toEqual({ running: 'payment' });
    await saga.signal('p', 'payment.confirmed', { amount: 42 });
    expect(await run).toMatchObject({ status: 'completed', results: { payment: { amount: 42 } } });
    expect(journal).toEqual(['create', 'ship {"amount":42}']);
  });

  it('a signal sent before the saga reaches the step is kept, not lost', async () => {
    const rt = runtime();
    const first = deferred<string>();
    const saga = rt.saga('checkout', {
      steps: [
        { name: 'slow', run: () => first.promise },
        { name: 'payment', waitFor: 'payment.confirmed' },
      ],
    });
    await rt.start();
    const run = saga.execute(null, { id: 'early' });
    await settle();
    await saga.signal('early', 'payment.confirmed', 'paid');
    first.resolve('done');
    expect(await run).toMatchObject({ status: 'completed', results: { slow: 'done', payment: 'paid' } });
  });

  it('two steps waiting for the same name take its signals in the order they were sent', async () => {
    const rt = runtime();
    const saga = rt.saga('approvals', {
      steps: [
        { name: 'first', waitFor: 'approved' },
        { name: 'second', waitFor: 'approved' },
      ],
    });
    await rt.start();
    const run = saga.execute(null, { id: 'two' });
    await settle();
    await saga.signal('two', 'approved', 'alice');
    await saga.signal('two', 'approved', 'bob');
    expect(await run).toMatchObject({ status: 'completed', results: { first: 'alice', second: 'bob' } });
  });

  it('a timeout fails the step with STEP_TIMEOUT and the saga compensates', async () => {
    const clock = new TestClock(1_000);
    const rt = runtime({ clock });
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: webhook(journal, 5_000) });
    await rt.start();
    const run = saga.execute(null, { id: 't' });
    await clock.advance(4_999);
    expect(saga.stateOf('t')).toEqual({ running: 'payment' });
    await clock.advance(1);
    expect(await run).toMatchObject({
      status: 'compensated',
      failedStep: 'payment',
      error: { code: 'STEP_TIMEOUT', message: expect.stringContaining("'payment.confirmed'") },
      compensated: ['createOrder'],
    });
    expect(journal).toEqual(['create', 'undo create']);
  });

  it('refuses unknown saga ids and signal names with NOT_FOUND, bad payloads, and finished sagas', async () => {
    const rt = runtime();
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: webhook(journal) });
    await rt.start();
    await expect(saga.signal('nobody', 'payment.confirmed')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    void saga.execute(null, { id: 'k' });
    await settle();
    await expect(saga.signal('k', 'payment.refused')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('payment.confirmed'),
    });
    await expect(saga.signal('k', 'payment.confirmed', { n: 1n })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    await saga.signal('k', 'payment.confirmed');
    await settle();
    expect(await saga.execute(null, { id: 'k' })).toMatchObject({ results: { payment: null } });
    await expect(saga.signal('k', 'payment.confirmed')).rejects.toMatchObject({ code: 'SAGA_FINISHED' });
  });

  it('waiting across a restart (SQLite), the saga takes a signal sent while it was down', async () => {
    const path = tempDb();
    const journal: string[] = [];
    const rt1 = runtime({ store: sqliteStore({ path }) });
    const saga1 = rt1.saga('checkout', { steps: webhook(journal, 60_000) });
    await rt1.start();
    void saga1.execute(null, { id: 'w' }).catch(() => {});
    await settle();
    expect(saga1.stateOf('w')).toEqual({ running: 'payment' });
    await rt1.stop();

    // Another runtime on the file (a CLI, a webhook handler) sends it while the owner is down.
    const sender = runtime({ store: sqliteStore({ path }) });
    const saga2 = sender.saga('checkout', { steps: webhook([], 60_000) });
    // The sender's start resumes the saga too (SQLite has no owners); it is waiting, so that is harmless here.
    await sender.start();
    await saga2.signal('w', 'payment.confirmed', { ok: true });
    expect(await saga2.execute(null, { id: 'w' })).toMatchObject({
      status: 'completed',
      results: { payment: { ok: true } },
    });
    expect(journal).toEqual(['create']);
  });
});

describe.each(sharedStoreKinds().filter((k) => k.available))('across runtimes sharing a $name store', (kind) => {
  it('a signal and a cancel sent from another runtime reach the saga', async () => {
    const { make, cleanup } = kind.fresh();
    cleanups.push(cleanup);
    const journal: string[] = [];
    const steps = [
      { name: 'createOrder', run: () => journal.push('create') && 'o', compensate: () => journal.push('undo create') },
      { name: 'payment', waitFor: 'payment.confirmed' },
      { name: 'review', waitFor: 'review.done' },
    ] as const satisfies readonly SagaStep[];
    const owner = createRuntime({ store: make(), onError: () => {} });
    const other = createRuntime({ store: make(), onError: () => {} });
    track(owner, other);
    const mine = owner.saga('checkout', { steps, pollMs: 20 });
    const theirs = other.saga('checkout', { steps, pollMs: 20 });
    await owner.start();
    await other.start();
    const run = mine.execute(null, { id: 'x1' });
    await waitUntil(() => JSON.stringify(mine.stateOf('x1')) === '{"running":"payment"}');
    await theirs.signal('x1', 'payment.confirmed', 7);
    await waitUntil(() => JSON.stringify(mine.stateOf('x1')) === '{"running":"review"}');
    const cancelled = await theirs.cancel('x1', 'fraud');
    expect(cancelled).toMatchObject({ status: 'cancelled', reason: 'fraud', results: { payment: 7 } });
    expect(await run).toMatchObject({ status: 'cancelled', compensated: ['createOrder'] });
    expect(journal).toEqual(['create', 'undo create']);
  });
});

async function waitUntil(ok: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.each(sharedStoreKinds().filter((k) => k.name === 'postgres' && k.available))(
  'signals on a $name store',
  (kind) => {
    it('a signal from another process wakes the waiting saga by NOTIFY, long before its next poll', async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const steps = [{ name: 'payment', waitFor: 'payment.confirmed' }] as const satisfies readonly SagaStep[];
      const owner = createRuntime({ store: make(), onError: () => {} });
      const other = createRuntime({ store: make(), onError: () => {} });
      track(owner, other);
      const mine = owner.saga('checkout', { steps, pollMs: 600_000 });
      const theirs = other.saga('checkout', { steps, pollMs: 600_000 });
      await owner.start();
      await other.start();
      const run = mine.execute(null, { id: 'n1' });
      // Another process sees the saga once its first checkpoint landed.
      await vi.waitFor(() => theirs.signal('n1', 'payment.confirmed', 'ok'));
      const started = Date.now();
      expect(await run).toMatchObject({ status: 'completed', results: { payment: 'ok' } });
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  },
);
