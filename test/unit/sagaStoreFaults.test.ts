import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type KeelError, memoryStore, type Runtime, sqliteStore } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { faultySagaStore } from '../fixtures/fakeStore.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { until } from '../fixtures/wait.js';

const runtimes: Runtime<any>[] = [];
const files: string[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop().catch(() => {});
  for (const f of files.splice(0)) removeDb(f);
});

/** A three-step checkout over a journal of what happened downstream; `failAt` names a step that throws. */
function checkout(journal: string[], failAt?: string) {
  const step = (name: string, undo: boolean) => ({
    name,
    run: () => {
      journal.push(`run ${name}`);
      if (failAt === name) throw new Error(`${name} refused`);
      return `${name}-result`;
    },
    ...(undo && { compensate: () => void journal.push(`undo ${name}`) }),
  });
  return [step('createOrder', true), step('deductInventory', true), step('processPayment', false)] as const;
}

/** Advances `clock` until `p` settles (the saga's store retries wait on it). */
async function advanceUntil<T>(clock: TestClock, p: Promise<T>, maxMs = 600_000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; !done && t < maxMs; t += 100) await clock.advance(100);
  return p;
}

function setup(inspect: (() => void) | undefined, base = memoryStore()) {
  const { store, faults } = faultySagaStore(base);
  const clock = new TestClock(0);
  const reports: string[] = [];
  const rt = createRuntime({ store, clock, inspect, onError: (_e, detail) => void reports.push(detail) });
  runtimes.push(rt);
  const events: string[] = [];
  rt.bus.subscribe('saga.checkout.>', (_p, e) => {
    events.push(e.type.slice('saga.checkout.'.length));
  });
  return { rt, store, base, faults, clock, reports, events };
}

describe.each([
  ['uninspected', undefined],
  ['inspected', () => {}],
] as const)('a failed progress write is not a step failure (memory, %s)', (_mode, inspect) => {
  it('a checkpoint that fails pauses the saga; it goes on when the store answers, with no compensation and no extra events', async () => {
    const { rt, base, faults, clock, reports, events } = setup(inspect);
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: checkout(journal) });
    await rt.start();
    // The checkpoint before deductInventory fails three times, then the store answers again.
    faults.decide = (r, n) => (r.state.includes('deductInventory') && n <= 5 ? 'fail' : 'ok');
    const done = saga.execute({ cart: 1 }, { id: 'c1' });
    await settle();
    expect(journal).toEqual(['run createOrder']);
    expect(saga.stateOf('c1')).toEqual({ running: 'deductInventory' });
    const r = await advanceUntil(clock, done);
    expect(r).toMatchObject({ status: 'completed', results: { processPayment: 'processPayment-result' } });
    expect(journal).toEqual(['run createOrder', 'run deductInventory', 'run processPayment']);
    await settle();
    expect(events).toEqual(['started', 'stepCompleted', 'stepCompleted', 'stepCompleted', 'completed']);
    expect(faults.saves.filter((s) => s.fault === 'fail').length).toBeGreaterThanOrEqual(3);
    // One report per pause, not one per retry.
    expect(reports.filter((d) => d.includes('paused'))).toHaveLength(1);
    expect((await base.loadSaga('checkout', 'c1'))?.status).toBe('completed');
  });

  it('one rejected write does not poison the later writes of the saga', async () => {
    const { rt, base, faults, clock } = setup(inspect);
    const saga = rt.saga('checkout', { steps: checkout([]) });
    await rt.start();
    faults.decide = (_r, n) => (n === 1 ? 'lost' : 'ok');
    const r = await advanceUntil(clock, saga.execute({}, { id: 'c2' }));
    expect(r.status).toBe('completed');
    // Every write after the lost one reached the store.
    expect(faults.saves.slice(1).every((s) => s.fault === 'ok')).toBe(true);
    expect((await base.loadSaga('checkout', 'c2'))?.status).toBe('completed');
  });

  it('the final write waits for the store too: execute resolves only once the result is stored', async () => {
    const { rt, base, faults, clock, events } = setup(inspect);
    const saga = rt.saga('checkout', { steps: checkout([]) });
    await rt.start();
    faults.decide = (r) => (r.status === 'completed' && faults.saves.length < 4 + 3 ? 'fail' : 'ok');
    let ended = false;
    const done = saga.execute({}, { id: 'c3' }).then((r) => {
      ended = true;
      return r;
    });
    await settle();
    expect(ended).toBe(false);
    expect(events).not.toContain('completed');
    expect((await base.loadSaga('checkout', 'c3'))?.status).toBe('running');
    expect((await advanceUntil(clock, done)).status).toBe('completed');
    expect((await base.loadSaga('checkout', 'c3'))?.status).toBe('completed');
    expect(events.at(-1)).toBe('completed');
  });

  it('a failing checkpoint before a retry wait is not the step failing again', async () => {
    const { rt, faults, clock } = setup(inspect);
    let calls = 0;
    const saga = rt.saga('checkout', {
      retry: { maxAttempts: 2, initialDelayMs: 100, jitter: false },
      steps: [
        {
          name: 'charge',
          run: () => {
            calls++;
            if (calls === 1) throw new Error('busy');
            return 'charged';
          },
        },
      ],
    });
    await rt.start();
    // The checkpoint that records attempt 2 fails twice.
    faults.decide = (r) =>
      r.attempt === 2 && faults.saves.filter((s) => s.record.attempt === 2).length <= 2 ? 'fail' : 'ok';
    const r = await advanceUntil(clock, saga.execute({}, { id: 'c4' }));
    expect(r).toMatchObject({ status: 'completed', results: { charge: 'charged' } });
    expect(calls).toBe(2);
  });

  it('compensation goes on after a store fault and undoes each step exactly once', async () => {
    const { rt, faults, clock, events } = setup(inspect);
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: checkout(journal, 'processPayment') });
    await rt.start();
    faults.decide = (r) =>
      r.status === 'compensating' && faults.saves.filter((s) => s.record.status === 'compensating').length <= 3
        ? 'fail'
        : 'ok';
    const r = await advanceUntil(clock, saga.execute({}, { id: 'c5' }));
    expect(r).toMatchObject({ status: 'compensated', compensated: ['deductInventory', 'createOrder'] });
    expect(journal.filter((j) => j.startsWith('undo'))).toEqual(['undo deductInventory', 'undo createOrder']);
    await settle();
    expect(events.filter((e) => e === 'compensating' || e === 'compensated')).toEqual(['compensating', 'compensated']);
    expect(events).not.toContain('failed');
  });

  it('execute rejects with STORE_UNAVAILABLE only when the runtime stops first; the next start resumes the saga', async () => {
    const { rt, base, faults, clock, events } = setup(inspect);
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: checkout(journal), shutdownGraceMs: 1_000 });
    await rt.start();
    faults.decide = (r) => (r.state.includes('deductInventory') ? 'fail' : 'ok');
    const done = saga.execute({}, { id: 'c6' });
    done.catch(() => {});
    await clock.advance(30_000);
    expect(journal).toEqual(['run createOrder']);
    const stopping = rt.stop();
    await clock.advance(1_000);
    await stopping;
    const error = (await done.catch((e) => e)) as KeelError;
    expect(error.code).toBe('STORE_UNAVAILABLE');
    expect(error.message).toMatch(/paused because the store failed/);
    expect((error.cause as KeelError).code).toBe('STORE_UNAVAILABLE');
    await settle();
    // Events follow what the store holds: the first step's completion was never saved, so it was never published.
    expect(events).toEqual(['started']);
    expect((await base.loadSaga('checkout', 'c6'))?.status).toBe('running');

    // The process restarts with the store healthy: the saga resumes at the last step it saved.
    const again = setup(inspect, base);
    const saga2 = again.rt.saga('checkout', { steps: checkout(journal) });
    await again.rt.start();
    const r = await advanceUntil(again.clock, saga2.execute({}, { id: 'c6' }));
    expect(r.status).toBe('completed');
    expect(journal).toEqual(['run createOrder', 'run createOrder', 'run deductInventory', 'run processPayment']);
  });

  it('a store that is down when execute starts delays the saga instead of failing it', async () => {
    const { rt, faults, clock, events } = setup(inspect);
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: checkout(journal) });
    await rt.start();
    faults.down = true;
    const done = saga.execute({}, { id: 'c7' });
    await clock.advance(20_000);
    expect(journal).toEqual([]);
    expect(events).toEqual([]);
    faults.down = false;
    expect((await advanceUntil(clock, done)).status).toBe('completed');
  });

  it('a stalled write holds the saga until it lands', async () => {
    const { rt, faults, clock } = setup(inspect);
    const journal: string[] = [];
    const saga = rt.saga('checkout', { steps: checkout(journal) });
    await rt.start();
    let release!: () => void;
    const stall = new Promise<void>((r) => (release = r));
    faults.decide = (_r, n) => (n === 2 ? stall : 'ok');
    const done = saga.execute({}, { id: 'c8' });
    await clock.advance(60_000);
    expect(journal).toEqual(['run createOrder']);
    release();
    expect((await advanceUntil(clock, done)).status).toBe('completed');
    expect(journal).toHaveLength(3);
  });
});

describe('a failed progress write is not a step failure (SQLite, a real SQLITE_BUSY)', () => {
  it('a database locked by another connection past busyTimeoutMs pauses the saga until the lock goes', async () => {
    const path = `${tempPath('saga-busy')}.db`;
    files.push(path);
    const reports: unknown[] = [];
    const rt = createRuntime({
      store: sqliteStore({ path, busyTimeoutMs: 0 }),
      onError: (e) => void reports.push(e),
    });
    runtimes.push(rt);
    const events: string[] = [];
    rt.bus.subscribe('saga.checkout.>', (_p, e) => {
      events.push(e.type.slice('saga.checkout.'.length));
    });
    const journal: string[] = [];
    let other: Database.Database | undefined;
    const steps = checkout(journal).map((s) =>
      s.name === 'createOrder'
        ? {
            ...s,
            run: () => {
              // Another connection takes the write lock while the first step runs.
              other = new Database(path);
              other.exec('BEGIN IMMEDIATE');
              return s.run();
            },
          }
        : s,
    );
    const saga = rt.saga('checkout', { steps });
    await rt.start();
    const done = saga.execute({}, { id: 'busy1' });
    await until(() => reports.length > 0, 5_000, 'the store fault to be reported');
    expect((reports[0] as KeelError).code).toBe('STORE_UNAVAILABLE');
    await new Promise((r) => setTimeout(r, 200));
    expect(journal).toEqual(['run createOrder']);
    other?.exec('COMMIT');
    other?.close();
    const r = await done;
    expect(r.status).toBe('completed');
    expect(events).not.toContain('compensating');
    expect(events).not.toContain('failed');
    expect(journal).toEqual(['run createOrder', 'run deductInventory', 'run processPayment']);
  });
});
