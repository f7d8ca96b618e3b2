import { describe, expect, it } from 'vitest';
import { createRuntime, KeelError } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { parseProm, sampleValue } from './promText.js';

async function scrape(rt: { metrics?: { scrape(): Promise<string> } | undefined }) {
  const { samples } = parseProm((await rt.metrics?.scrape()) as string);
  return (name: string, labels: Record<string, string>) => sampleValue(samples, name, labels);
}

describe('metric values on a simulated clock', () => {
  it('task wait and run time: from due to start, and the handler run, in seconds', async () => {
    const clock = new TestClock(1_000);
    const rt = createRuntime({ clock, metrics: true });
    const q = rt.queue('render', {
      handler: () => new Promise<void>((resolve) => clock.setTimeout(() => resolve(), 250)),
    });
    q.pause();
    await rt.start();
    await q.enqueue({ page: 1 });
    await clock.advance(500);
    q.resume();
    await settle();
    await clock.advance(250);
    await q.drain();
    const v = await scrape(rt);
    expect(v('keel_task_wait_seconds_count', { queue: 'render' })).toBe(1);
    expect(v('keel_task_wait_seconds_sum', { queue: 'render' })).toBe(0.5);
    expect(v('keel_task_wait_seconds_bucket', { queue: 'render', le: '0.25' })).toBe(0);
    expect(v('keel_task_wait_seconds_bucket', { queue: 'render', le: '0.5' })).toBe(1);
    expect(v('keel_task_run_seconds_sum', { queue: 'render', outcome: 'succeeded' })).toBe(0.25);
    await rt.stop();
  });

  it('breaker calls: latency by outcome (success, failure, timeout, ignored) and refusals by reason', async () => {
    const clock = new TestClock(0);
    const rt = createRuntime({ clock, metrics: true });
    const api = rt.breaker('api', {
      failureThreshold: 2,
      callTimeoutMs: 100,
      resetTimeoutMs: 1_000,
      isFailure: (e) => !(e instanceof RangeError),
    });
    const pool = rt.breaker('pool', { maxConcurrent: 1, maxQueued: 0 });
    await rt.start();
    const slow = api.call(() => new Promise((r) => clock.setTimeout(() => r('ok'), 30)));
    await clock.advance(30);
    await expect(slow).resolves.toBe('ok');
    await expect(api.call(async () => Promise.reject(new RangeError('not counted')))).rejects.toThrow(RangeError);
    const hung = api.call(() => new Promise(() => {}));
    const hungDone = expect(hung).rejects.toMatchObject({ code: 'CALL_TIMEOUT' });
    await clock.advance(100);
    await hungDone;
    await expect(api.call(async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(api.state).toBe('open');
    await expect(api.call(async () => 1)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    api.isolate();
    await expect(api.call(async () => 1)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    const held = pool.call(() => new Promise((r) => clock.setTimeout(r, 10)));
    await expect(pool.call(async () => 1)).rejects.toBeInstanceOf(KeelError);
    await clock.advance(10);
    await held;

    const v = await scrape(rt);
    expect(v('keel_breaker_call_seconds_sum', { breaker: 'api', outcome: 'success' })).toBe(0.03);
    expect(v('keel_breaker_call_seconds_count', { breaker: 'api', outcome: 'ignored' })).toBe(1);
    expect(v('keel_breaker_call_seconds_sum', { breaker: 'api', outcome: 'timeout' })).toBe(0.1);
    expect(v('keel_breaker_call_seconds_count', { breaker: 'api', outcome: 'failure' })).toBe(1);
    expect(v('keel_breaker_refusals_total', { breaker: 'api', reason: 'open' })).toBe(1);
    expect(v('keel_breaker_refusals_total', { breaker: 'api', reason: 'isolated' })).toBe(1);
    expect(v('keel_breaker_refusals_total', { breaker: 'pool', reason: 'bulkhead' })).toBe(1);
    expect(v('keel_breaker_transitions_total', { breaker: 'api', state: 'open' })).toBe(1);
    expect(v('keel_breaker_transitions_total', { breaker: 'api', state: 'isolated' })).toBe(1);
    expect(v('keel_breaker_state', { breaker: 'api', state: 'isolated' })).toBe(1);
    expect(v('keel_breaker_state', { breaker: 'pool', state: 'closed' })).toBe(1);
    await rt.stop();
  });

  it('a half-open breaker with its trial slot taken refuses with reason halfOpen', async () => {
    const clock = new TestClock(0);
    const rt = createRuntime({ clock, metrics: true });
    const b = rt.breaker('b', { failureThreshold: 1, resetTimeoutMs: 100 });
    await rt.start();
    await expect(b.call(async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await clock.advance(100);
    expect(b.state).toBe('halfOpen');
    const trial = b.call(() => new Promise((r) => clock.setTimeout(r, 10)));
    await expect(b.call(async () => 1)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    await clock.advance(10);
    await trial;
    const v = await scrape(rt);
    expect(v('keel_breaker_refusals_total', { breaker: 'b', reason: 'halfOpen' })).toBe(1);
    expect(v('keel_breaker_transitions_total', { breaker: 'b', state: 'halfOpen' })).toBe(1);
    expect(v('keel_breaker_transitions_total', { breaker: 'b', state: 'closed' })).toBe(1);
    await rt.stop();
  });

  it('two runtimes in one process keep separate registries', async () => {
    const a = createRuntime({ metrics: true });
    const b = createRuntime({ metrics: true });
    await a.start();
    await b.start();
    const qa = a.queue('q', { handler: () => {} });
    await qa.enqueue(1);
    await qa.drain();
    expect((await scrape(a))('keel_tasks_total', { queue: 'q', outcome: 'succeeded' })).toBe(1);
    expect((await scrape(b))('keel_tasks_total', { queue: 'q', outcome: 'succeeded' })).toBeUndefined();
    await a.stop();
    await b.stop();
  });
});
