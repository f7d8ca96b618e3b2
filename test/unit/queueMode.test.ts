import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { QueueEngine } from '../../src/actors/queue/engine.js';
import { IdlePoller } from '../../src/actors/queue/idlePoller.js';
import { defaultRetry } from '../../src/core/retry.js';
import { CircuitOpenError, createRuntime, memoryStore, type Runtime } from '../../src/index.js';
import { queueMachine } from '../../src/machines/queue.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { type Deferred, deferred } from '../fixtures/deferred.js';

/**
 * The queue machine is the one source of truth of the queue's mode: these
 * tests drive the queue actor itself (not the `Queue` handle), so an engine
 * that kept its own copy of the mode would disagree with what they assert.
 */

const runtimes: Array<{ rt: Runtime; clock: TestClock }> = [];
const unsettled: Deferred[] = [];
afterEach(async () => {
  for (const d of unsettled.splice(0)) d.resolve();
  for (const { rt, clock } of runtimes.splice(0)) {
    const stopped = rt.stop().catch(() => {});
    await clock.advance(60_000);
    await stopped;
  }
});

function setup(options: { breaker?: string; concurrency?: number } = {}) {
  const clock = new TestClock(0);
  const rt = createRuntime({ clock, onError: () => {} });
  runtimes.push({ rt, clock });
  const runs: Array<{ payload: unknown; done: Deferred }> = [];
  const q = rt.queue('q', {
    concurrency: options.concurrency ?? 1,
    ...(options.breaker !== undefined && { breaker: options.breaker }),
    handler: (t) => {
      const done = deferred();
      unsettled.push(done);
      runs.push({ payload: t.payload, done });
      return done.promise;
    },
  });
  return { clock, rt, q, runs, seen: () => runs.map((r) => r.payload) };
}

describe('the queue engine asks the queue machine for its mode', () => {
  it('claims exactly while the bare machine (no effects provided) is in running.working', async () => {
    // No entry action reaches the engine here: it can only know the mode by reading the actor.
    const store = memoryStore();
    await store.open();
    const clock = new TestClock(0);
    const seen: unknown[] = [];
    const engine = new QueueEngine({
      queue: 'q',
      store,
      clock,
      handler: (t) => void seen.push(t.payload),
      concurrency: 1,
      retry: defaultRetry,
      leaseMs: 30_000,
      timeoutMs: 0,
      pollMs: 1000,
      batchSize: 1,
      poller: new IdlePoller(store, clock, () => {}),
      breaker: undefined,
      breakerName: undefined,
      publish: () => {},
      report: (e) => {
        throw e;
      },
    });
    const actor = createActor(queueMachine, { input: { concurrency: 1, graceMs: 100 } });
    engine.attach(actor);
    actor.start();
    void engine.work();
    await store.enqueue('q', [{ payload: '"a"', runAt: 0 }], 0);
    engine.notify();
    await settle();
    expect(seen).toEqual([]);

    actor.send({ type: 'queue.start' });
    engine.notify();
    await settle();
    expect(seen).toEqual(['a']);

    actor.send({ type: 'queue.pause' });
    await store.enqueue('q', [{ payload: '"b"', runAt: 0 }], 0);
    engine.notify();
    await settle();
    expect(seen).toEqual(['a']);

    actor.send({ type: 'queue.resume' });
    engine.notify();
    await settle();
    expect(seen).toEqual(['a', 'b']);

    actor.send({ type: 'queue.stop' });
    expect(engine.isStopped).toBe(true);
    actor.stop();
  });

  it('queue.pause and queue.resume sent to the actor stop and restart claims', async () => {
    const { rt, q, runs, seen } = setup();
    await rt.start();
    q.actor.send({ type: 'queue.pause' });
    await q.enqueue('a');
    await settle();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'paused' });
    expect(seen()).toEqual([]);
    q.actor.send({ type: 'queue.resume' });
    await settle();
    expect(seen()).toEqual(['a']);
    runs[0]!.done.resolve();
    await q.drain();
  });

  it('pause and resume while stopping change nothing: no claim, the released task stays pending', async () => {
    const { rt, q, runs, seen, clock } = setup();
    await rt.start();
    await q.enqueue('a');
    await q.enqueue('b');
    await settle();
    expect(seen()).toEqual(['a']);
    const stopped = rt.stop();
    await settle();
    expect(q.actor.getSnapshot().value).toBe('stopping');
    for (const type of ['queue.pause', 'queue.resume', 'queue.ungate'] as const) q.actor.send({ type });
    q.actor.send({ type: 'queue.gate', retryAfterMs: 10 });
    q.pause();
    q.resume();
    await settle();
    expect(q.actor.getSnapshot().value).toBe('stopping');
    expect(seen()).toEqual(['a']);
    runs[0]!.done.resolve();
    await stopped;
    expect(q.actor.getSnapshot().value).toBe('stopped');
    expect(seen()).toEqual(['a']);
    expect(clock.pending).toBe(0);
  });
});

describe('the breaker gate is the machine state running.gated', () => {
  it("a refusal by the queue's breaker gates the actor; the retry time ungates it and claims resume", async () => {
    const { rt, q, runs, seen, clock } = setup({ breaker: 'svc' });
    rt.breaker('svc', { callTimeoutMs: 0 });
    await rt.start();
    await q.enqueue('a');
    await settle();
    runs[0]!.done.reject(new CircuitOpenError('svc', 1000));
    await settle();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'gated' });
    await q.enqueue('b');
    await clock.advance(999);
    expect(seen()).toEqual(['a']);
    await clock.advance(1);
    expect(q.actor.getSnapshot().value).toEqual({ running: 'working' });
    // One worker: b (due since it was enqueued) runs first, then a.
    expect(seen()).toEqual(['a', 'b']);
    runs[1]!.done.resolve();
    await settle();
    expect(seen()).toEqual(['a', 'b', 'a']);
    runs[2]!.done.resolve();
    await q.drain();
    expect(await q.stats()).toMatchObject({ succeeded: 2, dead: 0 });
  });

  it('queue.ungate sent to the actor reopens claims at once, before the retry time', async () => {
    const { rt, q, seen, runs, clock } = setup({ breaker: 'svc' });
    rt.breaker('svc', { callTimeoutMs: 0 });
    await rt.start();
    await q.enqueue('a');
    await settle();
    runs[0]!.done.reject(new CircuitOpenError('svc', 60_000));
    await settle();
    await q.enqueue('b');
    await clock.advance(100);
    expect(seen()).toEqual(['a']);
    q.actor.send({ type: 'queue.ungate' });
    await settle();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'working' });
    // b is due; a waits out its own retry time.
    expect(seen()).toEqual(['a', 'b']);
  });

  it('gated by an isolated breaker (no retry time), the queue waits until the breaker closes', async () => {
    const { rt, q, seen, runs, clock } = setup({ breaker: 'svc' });
    const breaker = rt.breaker('svc', { callTimeoutMs: 0 });
    await rt.start();
    await q.enqueue('a');
    await settle();
    runs[0]!.done.reject(new CircuitOpenError('svc', Number.POSITIVE_INFINITY, 'isolated'));
    await settle();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'gated' });
    await q.enqueue('b');
    await clock.advance(600_000);
    expect(seen()).toEqual(['a']);
    breaker.isolate();
    breaker.reset();
    await settle();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'working' });
    // The refused task went back due at once; one worker takes the tasks in turn.
    expect(seen()).toEqual(['a', 'a']);
    runs[1]!.done.resolve();
    await settle();
    expect(seen()).toEqual(['a', 'a', 'b']);
  });

  it('pausing a gated queue drops the gate: resume claims at once, and no gate timer is left', async () => {
    const { rt, q, seen, runs, clock } = setup({ breaker: 'svc', concurrency: 2 });
    rt.breaker('svc', { callTimeoutMs: 0 });
    await rt.start();
    await q.enqueue('a');
    await settle();
    runs[0]!.done.reject(new CircuitOpenError('svc', 60_000));
    await settle();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'gated' });
    const gatedTimers = clock.pending;
    q.pause();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'paused' });
    expect(clock.pending).toBe(gatedTimers - 1);
    await q.enqueue('b');
    q.resume();
    await settle();
    expect(seen()).toEqual(['a', 'b']);
  });

  it('a stop while gated clears the gate timer and waits for the running task', async () => {
    const { rt, q, seen, runs, clock } = setup({ breaker: 'svc', concurrency: 2 });
    rt.breaker('svc', { callTimeoutMs: 0 });
    await rt.start();
    await q.enqueue('a');
    await q.enqueue('b');
    await settle();
    expect(seen()).toEqual(['a', 'b']);
    runs[0]!.done.reject(new CircuitOpenError('svc', 60_000));
    await settle();
    expect(q.actor.getSnapshot().value).toEqual({ running: 'gated' });
    const stopped = rt.stop();
    await settle();
    expect(q.actor.getSnapshot().value).toBe('stopping');
    runs[1]!.done.resolve();
    await stopped;
    expect(q.actor.getSnapshot().value).toBe('stopped');
    expect(clock.pending).toBe(0);
  });
});
