import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type KeelError, type Runtime } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';

describe('queue guarded by a breaker', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  it('while the breaker is open, tasks wait for it instead of spending attempts', async () => {
    const clock = new TestClock(0);
    rt = createRuntime({ clock, onError: () => {} });
    const breaker = rt.breaker('svc', { failureThreshold: 2, resetTimeoutMs: 1000, callTimeoutMs: 0 });
    let down = true;
    const calls: Array<{ at: number; attempt: number; down: boolean }> = [];
    const q = rt.queue('sync', {
      breaker: 'svc',
      retry: { initialDelayMs: 10, jitter: false, maxAttempts: 3 },
      handler: async (t) => {
        calls.push({ at: clock.now(), attempt: t.attempt, down });
        if (down) throw new Error('503');
      },
    });
    await rt.start();
    for (let i = 0; i < 5; i++) await q.enqueue(i);
    await settle();
    expect(breaker.state).toBe('open');
    const whileDown = calls.length;
    expect(whileDown).toBe(2);
    await clock.advance(900);
    expect(calls.length).toBe(whileDown);
    expect(await q.stats()).toMatchObject({ dead: 0, succeeded: 0 });
    down = false;
    await clock.advance(200);
    await q.drain();
    expect(breaker.state).toBe('closed');
    expect(await q.stats()).toMatchObject({ succeeded: 5, dead: 0 });
    expect(Math.max(...calls.map((c) => c.attempt))).toBeLessThanOrEqual(2);
    // Nothing was tried before the breaker allowed a trial.
    expect(calls.filter((c) => !c.down).every((c) => c.at >= 1000)).toBe(true);
  });

  it('an isolated breaker holds the tasks until it is reset', async () => {
    const clock = new TestClock(0);
    rt = createRuntime({ clock, onError: () => {} });
    const breaker = rt.breaker('svc', { callTimeoutMs: 0 });
    const seen: unknown[] = [];
    const q = rt.queue('sync', {
      breaker: 'svc',
      retry: { maxAttempts: 1 },
      handler: async (t) => void seen.push(t.payload),
    });
    breaker.isolate();
    await rt.start();
    await q.enqueue('a');
    await q.enqueue('b');
    await clock.advance(60_000);
    expect(seen).toEqual([]);
    expect(await q.stats()).toMatchObject({ pending: 2, dead: 0 });
    breaker.reset();
    await q.drain();
    expect(seen.sort()).toEqual(['a', 'b']);
    expect(await q.stats()).toMatchObject({ succeeded: 2, dead: 0 });
  });

  it("a timed-out breaker call aborts the handler's task.signal and fails the attempt", async () => {
    const clock = new TestClock(0);
    rt = createRuntime({ clock, onError: () => {} });
    rt.breaker('svc', { callTimeoutMs: 50, failureThreshold: 100 });
    const signals: AbortSignal[] = [];
    const q = rt.queue('sync', {
      breaker: 'svc',
      retry: { initialDelayMs: 10, jitter: false, maxAttempts: 2 },
      handler: (t) => {
        signals.push(t.signal);
        return new Promise(() => {});
      },
    });
    await rt.start();
    await q.enqueue('a');
    await settle();
    expect(signals).toHaveLength(1);
    expect(signals[0]!.aborted).toBe(false);
    await clock.advance(50);
    expect(signals[0]!.aborted).toBe(true);
    expect((signals[0]!.reason as KeelError).code).toBe('CALL_TIMEOUT');
    await clock.advance(10 + 50);
    expect(signals).toHaveLength(2);
    expect((await q.dead())[0]!.error).toMatch(/CallTimeoutError/);
  });

  it("a guarded handler's task.signal still aborts when the runtime stops it", async () => {
    const clock = new TestClock(0);
    rt = createRuntime({ clock, onError: () => {} });
    rt.breaker('svc', { callTimeoutMs: 10_000 });
    const signals: AbortSignal[] = [];
    const q = rt.queue('sync', {
      breaker: 'svc',
      graceMs: 100,
      handler: (t) => {
        signals.push(t.signal);
        return new Promise(() => {});
      },
    });
    await rt.start();
    await q.enqueue('a');
    await settle();
    const stopped = rt.stop();
    await clock.advance(100);
    await stopped;
    expect(signals).toHaveLength(1);
    expect((signals[0]!.reason as KeelError).code).toBe('RUNTIME_STOPPED');
  });

  it('a CircuitOpenError from another breaker is an ordinary failure', async () => {
    const clock = new TestClock(0);
    rt = createRuntime({ clock, onError: () => {} });
    const other = rt.breaker('other', { callTimeoutMs: 0 });
    rt.breaker('svc', { callTimeoutMs: 0 });
    other.isolate();
    const q = rt.queue('sync', {
      breaker: 'svc',
      retry: { maxAttempts: 1 },
      handler: () => other.call(async () => 1),
    });
    await rt.start();
    await q.enqueue('a');
    await q.drain();
    expect((await q.dead())[0]!.error).toMatch(/CircuitOpenError/);
  });
});
