import { afterEach, describe, expect, it } from 'vitest';
import {
  fleetDemo,
  postSms,
  type SmsAnswer,
  type SmsProvider,
  type SmsService,
  startProvider,
  startService,
} from '../../examples/sms.js';
import { createRuntime, type Runtime } from '../../src/index.js';
import { pgAvailable } from '../fixtures/pg.js';
import { sleep } from '../fixtures/wait.js';

const failureThreshold = 3;
const halfOpenMaxCalls = 1;
const callTimeoutMs = 300;
const resetTimeoutMs = 200;
// Time the service may take on top of callTimeoutMs (measured by the service: Server-Timing). The bound is
// what matters (a hanging provider never answers); the margin absorbs a loaded machine's late timers.
const marginMs = 300;
// Round trips also queue in the client and the HTTP stack (200 requests at once, one process, 2 cores).
const clientMarginMs = 1_500;

let rt: Runtime | undefined;
let provider: SmsProvider | undefined;
let service: SmsService | undefined;

afterEach(async () => {
  await service?.close();
  await provider?.close();
  await rt?.stop();
  rt = provider = service = undefined;
});

describe('SMS service behind a breaker', () => {
  it('stays responsive and spares a hanging provider, then recovers to 202', async () => {
    rt = createRuntime();
    provider = await startProvider();
    service = await startService(rt, provider.url, {
      failureThreshold,
      halfOpenMaxCalls,
      callTimeoutMs,
      resetTimeoutMs,
    });
    const p = provider;
    const openedAt: number[] = []; // provider calls seen when each open period began
    rt.bus.subscribe('breaker.sms.opened', () => {
      openedAt.push(p.received);
    });
    await rt.start();

    for (let i = 0; i < 5; i++) expect((await postSms(service.url)).status).toBe(202);

    p.mode = 'slow';
    const outageStart = p.received;
    // The first requests find out: they time out, and the circuit opens.
    const first = await Promise.all(Array.from({ length: failureThreshold }, () => postSms(service!.url)));
    for (const r of first) {
      expect(r.status).toBe(503);
      expect(r.serverMs).toBeGreaterThanOrEqual(callTimeoutMs - 5);
      expect(r.serverMs).toBeLessThan(callTimeoutMs + marginMs);
    }
    expect(service.breaker.state).toBe('open');

    // Waves of 200 concurrent requests across several open → halfOpen → open cycles.
    const answers: SmsAnswer[] = [];
    const until = Date.now() + 3 * (resetTimeoutMs + callTimeoutMs);
    // At least three waves whatever the machine's pace: the counts below follow the answers, not the clock.
    for (let wave = 0; Date.now() < until || wave < 3; wave++) {
      answers.push(...(await Promise.all(Array.from({ length: 200 }, () => postSms(service!.url)))));
      await sleep(50);
    }
    const outageCalls = [...openedAt, p.received];
    expect(openedAt.length).toBeGreaterThanOrEqual(3);
    const perPeriod = outageCalls.map((seen, i) => seen - (i === 0 ? outageStart : (outageCalls[i - 1] as number)));
    console.log(
      `sms: ${answers.length} requests in waves of 200; provider calls per open period ${perPeriod.join(', ')}; service answer ms p50 ${quantile(answers, 0.5)}, p99 ${quantile(answers, 0.99)}, max ${quantile(answers, 1)}; client round trip max ${Math.max(...answers.map((a) => a.ms))} ms`,
    );
    for (const n of perPeriod) expect(n).toBeLessThanOrEqual(failureThreshold + halfOpenMaxCalls);
    for (const r of answers) {
      expect(r.status).toBe(503);
      expect(r.serverMs).toBeLessThan(callTimeoutMs + marginMs);
      expect(r.ms).toBeLessThan(callTimeoutMs + clientMarginMs);
    }
    const refused = answers.filter((r) => r.body.error === 'sms_unavailable' && r.retryAfter !== null);
    expect(refused.length).toBeGreaterThan(answers.length * 0.9);
    expect(Number(refused[0]?.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(refused[0]?.body).toMatchObject({ error: 'sms_unavailable', state: expect.any(String) });

    p.mode = 'healthy';
    let status = 0;
    const deadline = Date.now() + 5_000;
    while (status !== 202 && Date.now() < deadline) {
      await sleep(25);
      status = (await postSms(service.url)).status;
    }
    expect(status).toBe(202);
    const after = await Promise.all(Array.from({ length: 50 }, () => postSms(service!.url)));
    expect(after.map((r) => r.status)).toEqual(Array(50).fill(202));
    expect(service.breaker.stats).toMatchObject({ state: 'closed', inFlight: 0 });
    // Nearly every answer was a breaker rejection, counted per answer (a busy machine sends fewer waves in the
    // same time, so no fixed count): the few others are trial calls that timed out.
    expect(service.breaker.stats.rejections).toBeGreaterThan(answers.length * 0.9);
    expect(answers.length).toBeGreaterThanOrEqual(600);
  });

  it('answers 503 with a JSON reason while the provider is down, and 400 for a bad request', async () => {
    rt = createRuntime();
    provider = await startProvider();
    provider.mode = 'down';
    service = await startService(rt, provider.url, { failureThreshold: 2, resetTimeoutMs: 10_000 });
    expect((await postSms(service.url)).status).toBe(502);
    expect((await postSms(service.url)).status).toBe(502);
    const refused = await postSms(service.url);
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('10');
    expect(refused.body).toMatchObject({ error: 'sms_unavailable', state: 'open' });
    expect(refused.body.retryAfterMs).toBeGreaterThan(9_000);
    expect(provider.received).toBe(2);

    const bad = await fetch(`${service.url}/sms`, { method: 'POST', body: 'not json' });
    expect(bad.status).toBe(400);
    await bad.body?.cancel();
  });
});

function quantile(answers: SmsAnswer[], q: number): number {
  const sorted = answers.map((a) => a.serverMs).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

describe.skipIf(!pgAvailable)('SMS fleet demo: three runtimes share one breaker on Postgres', () => {
  it("keeps the hanging provider's calls within the fleet bound", { timeout: 30_000 }, async () => {
    const lines: string[] = [];
    const log = {
      line: (who: string, what: string) => lines.push(`${who}: ${what}`),
      summary: (s: string) => lines.push(s),
      section: () => {},
      summaries: [],
    };
    const result = await fleetDemo(log as never, 2000);
    expect(result).toBeDefined();
    expect(result!.calls).toBeGreaterThan(0);
    expect(result!.calls).toBeLessThanOrEqual(result!.bound);
    expect(lines.join('\n')).toMatch(/provider saw \d+ calls/);
  });
});
