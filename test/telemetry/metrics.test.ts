import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { CircuitOpenError, createRuntime, KeelError, NonRetryableError, type Runtime } from '../../src/index.js';
import { parseProm, sampleValue } from './promText.js';

const running: Runtime[] = [];
afterEach(async () => {
  for (const rt of running.splice(0)) await rt.stop();
});

function started(options: Parameters<typeof createRuntime>[0]): Runtime {
  const rt = createRuntime(options);
  running.push(rt);
  return rt;
}

/** GET with a chosen Host header (fetch does not let a test set it). */
function get(url: string, host?: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs every pattern through the outcomes the metrics count. */
async function scriptedRun(rt: Runtime): Promise<void> {
  let flaky = 0;
  const mail = rt.queue('mail', {
    retry: { initialDelayMs: 1, maxAttempts: 3 },
    handler: async (task) => {
      const p = task.payload as { kind: string };
      if (p.kind === 'bad') throw new NonRetryableError('bad address');
      if (p.kind === 'flaky' && flaky++ === 0) throw new Error('try again');
      return 'sent';
    },
  });
  const sms = rt.breaker('sms', { failureThreshold: 1, resetTimeoutMs: 60_000 });
  const checkout = rt.saga('checkout', {
    steps: [
      { name: 'reserve', run: () => 'r1', compensate: () => {} },
      {
        name: 'pay',
        run: (ctx) => {
          if ((ctx.input as { card: string }).card === 'declined') throw new Error('declined');
          return 'p1';
        },
      },
    ],
  });
  await rt.start();
  await mail.enqueue({ kind: 'ok' });
  await mail.enqueue({ kind: 'flaky' });
  await mail.enqueue({ kind: 'bad' });
  await mail.drain();
  expect(await sms.call(async () => 'ok')).toBe('ok');
  await expect(sms.call(async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
  await expect(sms.call(async () => 'refused')).rejects.toBeInstanceOf(CircuitOpenError);
  sms.reset();
  expect((await checkout.execute({ card: 'good' })).status).toBe('completed');
  expect((await checkout.execute({ card: 'declined' })).status).toBe('compensated');
}

describe('metrics: GET /metrics', () => {
  it('counts, times and gauges a scripted run, scraped over HTTP from the metrics port and the viewer', async () => {
    const rt = started({ metrics: { port: 0 }, viewer: { port: 0 } });
    await scriptedRun(rt);
    const url = rt.metrics?.url as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain; version=0.0.4');
    const { samples, types } = parseProm(res.body);
    const v = (name: string, labels: Record<string, string>) => sampleValue(samples, name, labels);

    expect(types.get('keel_tasks_total')).toBe('counter');
    expect(v('keel_tasks_total', { queue: 'mail', outcome: 'succeeded' })).toBe(2);
    expect(v('keel_tasks_total', { queue: 'mail', outcome: 'retried' })).toBe(1);
    expect(v('keel_tasks_total', { queue: 'mail', outcome: 'dead' })).toBe(1);
    expect(types.get('keel_task_run_seconds')).toBe('histogram');
    expect(v('keel_task_run_seconds_count', { queue: 'mail', outcome: 'succeeded' })).toBe(2);
    expect(v('keel_task_run_seconds_count', { queue: 'mail', outcome: 'retrying' })).toBe(1);
    expect(v('keel_task_run_seconds_count', { queue: 'mail', outcome: 'dead' })).toBe(1);
    expect(v('keel_task_run_seconds_bucket', { queue: 'mail', outcome: 'succeeded', le: '+Inf' })).toBe(2);
    expect(v('keel_task_wait_seconds_count', { queue: 'mail' })).toBe(4);
    expect(v('keel_task_wait_seconds_sum', { queue: 'mail' })).toBeGreaterThanOrEqual(0);
    expect(types.get('keel_tasks')).toBe('gauge');
    expect(v('keel_tasks', { queue: 'mail', state: 'succeeded' })).toBe(2);
    expect(v('keel_tasks', { queue: 'mail', state: 'dead' })).toBe(1);
    expect(v('keel_tasks', { queue: 'mail', state: 'pending' })).toBe(0);

    expect(v('keel_sagas_total', { saga: 'checkout', outcome: 'started' })).toBe(2);
    expect(v('keel_sagas_total', { saga: 'checkout', outcome: 'completed' })).toBe(1);
    expect(v('keel_sagas_total', { saga: 'checkout', outcome: 'compensated' })).toBe(1);
    expect(v('keel_sagas_total', { saga: 'checkout', outcome: 'failed' })).toBeUndefined();
    expect(v('keel_saga_duration_seconds_count', { saga: 'checkout', outcome: 'completed' })).toBe(1);
    expect(v('keel_saga_duration_seconds_count', { saga: 'checkout', outcome: 'compensated' })).toBe(1);

    expect(v('keel_breaker_transitions_total', { breaker: 'sms', state: 'open' })).toBe(1);
    expect(v('keel_breaker_transitions_total', { breaker: 'sms', state: 'closed' })).toBe(1);
    expect(v('keel_breaker_refusals_total', { breaker: 'sms', reason: 'open' })).toBe(1);
    expect(v('keel_breaker_call_seconds_count', { breaker: 'sms', outcome: 'success' })).toBe(1);
    expect(v('keel_breaker_call_seconds_count', { breaker: 'sms', outcome: 'failure' })).toBe(1);
    expect(v('keel_breaker_state', { breaker: 'sms', state: 'closed' })).toBe(1);
    expect(v('keel_breaker_state', { breaker: 'sms', state: 'open' })).toBe(0);

    // The viewer serves the same registry.
    const viewed = await get(`${rt.viewer?.url}metrics`);
    expect(viewed.status).toBe(200);
    expect(sampleValue(parseProm(viewed.body).samples, 'keel_tasks_total', { queue: 'mail', outcome: 'dead' })).toBe(1);
  });

  it('serves only /metrics on its own port, refuses a rebound Host, and closes the port on rt.stop()', async () => {
    const rt = createRuntime({ metrics: { port: 0 } });
    await rt.start();
    const url = rt.metrics?.url as string;
    expect((await get(url.replace(/metrics$/, ''))).status).toBe(404);
    const rebound = await get(url, 'evil.example:80');
    expect(rebound.status).toBe(403);
    expect(rebound.body).not.toContain('keel_');
    expect((await get(url, 'localhost:1')).status).toBe(200);
    await rt.stop();
    expect(rt.metrics?.url).toBeUndefined();
    await expect(get(url)).rejects.toThrow(/ECONNREFUSED/);
    // Values stay readable after the stop.
    expect(await rt.metrics?.scrape()).toContain('keel_tasks_total');
  });

  it('metrics: true has no port of its own: rt.metrics.scrape() and the viewer route', async () => {
    const rt = started({ metrics: true });
    await rt.start();
    expect(rt.metrics?.url).toBeUndefined();
    expect(rt.metrics?.contentType).toContain('text/plain');
    const { types } = parseProm((await rt.metrics?.scrape()) as string);
    expect([...types.keys()].filter((n) => n.startsWith('keel_')).sort()).toEqual([
      'keel_breaker_call_seconds',
      'keel_breaker_refusals_total',
      'keel_breaker_state',
      'keel_breaker_transitions_total',
      'keel_saga_duration_seconds',
      'keel_sagas_total',
      'keel_task_run_seconds',
      'keel_task_wait_seconds',
      'keel_tasks',
      'keel_tasks_total',
    ]);
  });

  it('a viewer without metrics has no /metrics route; a runtime without metrics has no rt.metrics', async () => {
    const rt = started({ viewer: { port: 0 } });
    await rt.start();
    expect(rt.metrics).toBeUndefined();
    expect((await get(`${rt.viewer?.url}metrics`)).status).toBe(404);
  });

  it('refuses bad metrics options with INVALID_OPTIONS naming the option', () => {
    const bad: Array<[unknown, RegExp]> = [
      [1, /option 'metrics' must be true, false or \{ port, host \}, got 1/],
      [{ prot: 9464 }, /option 'prot' is not a metrics option/],
      [{ port: -1 }, /option 'metrics.port' must be an integer from 0 to 65535, got -1/],
      [{ port: 80.5 }, /metrics.port/],
      [{ host: 'a b' }, /option 'metrics.host' must be a host name or IP address/],
    ];
    for (const [metrics, message] of bad) {
      let error: unknown;
      try {
        createRuntime({ metrics: metrics as never });
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(metrics)).toBeInstanceOf(KeelError);
      expect((error as KeelError).code).toBe('INVALID_OPTIONS');
      expect((error as KeelError).message).toMatch(message);
    }
    expect(createRuntime({ metrics: false }).metrics).toBeUndefined();
  });
});
