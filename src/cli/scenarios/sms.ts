import { createServer, type ServerResponse } from 'node:http';
import {
  type Breaker,
  type BreakerOptions,
  CallTimeoutError,
  CircuitOpenError,
  createRuntime,
  postgresStore,
  type Runtime,
} from '../../index.js';
import type { DemoLog } from '../demoLog.js';
import { closeServer, listen, readBody } from './lib/http.js';

/** How the simulated SMS provider behaves. */
export type ProviderMode = 'healthy' | 'slow' | 'down';

/** A simulated SMS provider on localhost (`POST /send`). */
export interface SmsProvider {
  readonly url: string;
  /** Requests it received, in total. */
  readonly received: number;
  mode: ProviderMode;
  close(): Promise<void>;
}

/**
 * Starts the simulated provider: `healthy` answers 200 at once, `down` answers
 * 503 at once, `slow` holds each request `slowMs` before answering (longer than
 * any sane timeout: it stands for a provider that hangs).
 */
export async function startProvider(options: { slowMs?: number } = {}): Promise<SmsProvider> {
  const slowMs = options.slowMs ?? 60_000;
  const held = new Set<NodeJS.Timeout>();
  let received = 0;
  let next = 1;
  const provider = {
    mode: 'healthy' as ProviderMode,
    get received() {
      return received;
    },
  };
  const server = createServer((req, res) => {
    received++;
    req.resume();
    const answer = () => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: `msg-${next++}` }));
    };
    if (provider.mode === 'down') {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'provider down' }));
    } else if (provider.mode === 'slow') {
      const t = setTimeout(() => {
        held.delete(t);
        answer();
      }, slowMs);
      held.add(t);
    } else {
      answer();
    }
  });
  const url = await listen(server);
  return Object.assign(provider, {
    url,
    async close() {
      for (const t of held) clearTimeout(t);
      held.clear();
      await closeServer(server);
    },
  });
}

/** The provider answered with an error status. */
export class ProviderError extends Error {
  constructor(readonly status: number) {
    super(`SMS provider answered ${status}`);
    this.name = 'ProviderError';
  }
}

/** The service in front of the provider (`POST /sms`). */
export interface SmsService {
  readonly url: string;
  readonly breaker: Breaker;
  close(): Promise<void>;
}

/**
 * Starts the SMS service: `POST /sms` with `{ to, text }` sends through the
 * breaker `sms` and answers `202 { id }`; while the circuit refuses calls it
 * answers `503` at once, with `Retry-After` and a JSON reason.
 */
export async function startService(
  rt: Runtime,
  providerUrl: string,
  options: BreakerOptions = {},
): Promise<SmsService> {
  const breaker = rt.breaker('sms', options);
  const send = (body: string) =>
    breaker.call(async (signal) => {
      const res = await fetch(`${providerUrl}/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal,
      });
      if (!res.ok) {
        await res.body?.cancel();
        throw new ProviderError(res.status);
      }
      return (await res.json()) as { id: string };
    });

  const server = createServer(async (req, res) => {
    // Server-Timing tells clients (and the tests) how long the service itself took to answer.
    const started = performance.now();
    const timed = { res, started };
    if (req.method !== 'POST' || req.url !== '/sms') return reply(timed, 404, { error: 'not_found' });
    let body: string;
    try {
      body = await readBody(req);
      const msg = JSON.parse(body) as { to?: unknown; text?: unknown };
      if (typeof msg.to !== 'string' || typeof msg.text !== 'string') throw new Error('to and text are required');
    } catch (e) {
      return reply(timed, 400, { error: 'bad_request', reason: (e as Error).message });
    }
    try {
      const { id } = await send(body);
      reply(timed, 202, { id, status: 'accepted' });
    } catch (e) {
      if (e instanceof CircuitOpenError) return unavailable(timed, e.retryAfterMs, e.message, e.state);
      if (e instanceof CallTimeoutError) {
        return unavailable(timed, breaker.retryAfterMs, 'the SMS provider did not answer in time', breaker.state);
      }
      reply(timed, 502, { error: 'provider_error', reason: (e as Error).message });
    }
  });
  const url = await listen(server);
  return { url, breaker, close: () => closeServer(server) };
}

/** A response and when its request arrived. */
interface Timed {
  res: ServerResponse;
  started: number;
}

function unavailable(res: Timed, retryAfterMs: number, reason: string, state: string): void {
  const headers: Record<string, string> = {};
  // Retry-After is whole seconds; an isolated circuit has no time to promise.
  if (Number.isFinite(retryAfterMs)) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  reply(
    res,
    503,
    { error: 'sms_unavailable', reason, state, retryAfterMs: Number.isFinite(retryAfterMs) ? retryAfterMs : null },
    headers,
  );
}

function reply({ res, started }: Timed, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const timing = `total;dur=${(performance.now() - started).toFixed(1)}`;
  res.writeHead(status, { 'content-type': 'application/json', 'server-timing': timing, ...headers });
  res.end(JSON.stringify(body));
}

/** What one request to the service returned. */
export interface SmsAnswer {
  status: number;
  body: any;
  retryAfter: string | null;
  /** Round trip seen by the client. */
  ms: number;
  /** Time the service took, from its Server-Timing header. */
  serverMs: number;
}

/** Sends one SMS request to the service. */
export async function postSms(serviceUrl: string, to = '+15550100'): Promise<SmsAnswer> {
  const started = Date.now();
  const res = await fetch(`${serviceUrl}/sms`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to, text: 'your code is 4711' }),
  });
  const body = await res.json();
  const timing = /dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
  return {
    status: res.status,
    body,
    retryAfter: res.headers.get('retry-after'),
    ms: Date.now() - started,
    serverMs: timing ? Number(timing[1]) : Number.NaN,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The SMS story: the provider is healthy, then hangs under load, then recovers.
 * The service keeps answering fast (503 + Retry-After while the circuit is
 * open), the provider sees only a few trial calls, and sending resumes by itself.
 */
export async function demo(log: DemoLog): Promise<void> {
  const rt = createRuntime();
  const provider = await startProvider();
  const options = { failureThreshold: 3, callTimeoutMs: 300, resetTimeoutMs: 500, halfOpenMaxCalls: 1 };
  const service = await startService(rt, provider.url, options);
  let outage = 'breaker: provider outage not finished';
  rt.bus.subscribe('breaker.sms.*', (p: any, e) =>
    log.line('breaker', `${e.type.split('.').pop()} (${p.state}, retry after ${p.retryAfterMs} ms)`),
  );
  await rt.start();
  try {
    const r1 = await Promise.all(Array.from({ length: 5 }, () => postSms(service.url)));
    log.line('service', `provider healthy: ${r1.map((r) => r.status).join(' ')}`);

    provider.mode = 'slow';
    log.line('provider', 'now hangs on every request');
    const before = provider.received;
    const burst = await Promise.all(Array.from({ length: 3 }, () => postSms(service.url)));
    log.line('service', `first requests time out: ${burst.map((r) => `${r.status} in ${r.serverMs} ms`).join(', ')}`);
    const load = await Promise.all(Array.from({ length: 100 }, () => postSms(service.url)));
    const slowest = Math.max(...load.map((r) => r.serverMs));
    log.line(
      'service',
      `100 requests while open: all ${load[0]?.status}, Retry-After ${load[0]?.retryAfter}s, slowest ${slowest} ms`,
    );
    log.line('provider', `saw ${provider.received - before} calls during the outage so far`);

    provider.mode = 'healthy';
    log.line('provider', 'healthy again');
    let last = 0;
    for (let i = 0; i < 40 && last !== 202; i++) {
      await sleep(50);
      last = (await postSms(service.url)).status;
    }
    log.line('service', `answers ${last} again; stats ${JSON.stringify(service.breaker.stats)}`);
    outage = `breaker: provider outage absorbed (${provider.received - before} provider calls for ${load.length + burst.length} requests), recovered to ${last}`;
  } finally {
    await service.close();
    await provider.close();
    await rt.stop();
  }
  const fleet = await fleetDemo(log);
  log.summary(
    `${outage}; fleet of 3 runtimes: ${fleet ? `${fleet.calls} provider calls (bound ${fleet.bound})` : 'skipped (no Postgres)'}`,
  );
}

/**
 * The fleet case: three runtimes (standing for three processes) share one
 * `scope: 'fleet'` breaker through Postgres (`KEEL_PG_URL`, default the local
 * test database) while the provider hangs; the provider's calls are counted
 * against the bound. Skipped, and said so, when Postgres is not reachable.
 */
export async function fleetDemo(log: DemoLog, runMs = 2500): Promise<{ calls: number; bound: number } | undefined> {
  const url = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `keel_demo_fleet_${process.pid}`;
  const options = {
    scope: 'fleet',
    failureThreshold: 3,
    halfOpenMaxCalls: 1,
    callTimeoutMs: 200,
    resetTimeoutMs: 400,
    fleetSyncMs: 20,
  } as const;
  // Probe with a bare store first: runtimes created for nothing would still show in the demo's viewer.
  const probe = postgresStore({ connectionString: url, schema, poolSize: 1, connectTimeoutMs: 1000 });
  try {
    await probe.open();
  } catch (error) {
    log.line('fleet', `skipped: no Postgres at KEEL_PG_URL (${(error as Error).message.split(': ').pop()})`);
    return undefined;
  } finally {
    await probe.close().catch(() => {});
  }
  const runtimes = [0, 1, 2].map(() =>
    createRuntime({
      store: postgresStore({ connectionString: url, schema, poolSize: 2, connectTimeoutMs: 1000 }),
      onError: () => {},
    }),
  );
  await Promise.all(runtimes.map((rt) => rt.start()));
  const provider = await startProvider();
  provider.mode = 'slow';
  let opens = 0;
  runtimes[0]?.bus.subscribe('breaker.sms.opened', () => {
    opens++;
  });
  try {
    const breakers = runtimes.map((rt) => rt.breaker('sms', options));
    while (breakers.some((b) => b.stats.fleet !== 'joined')) await sleep(10);
    log.line(
      'fleet',
      `3 runtimes share breaker 'sms' (scope 'fleet') on Postgres schema ${schema}; the provider hangs`,
    );
    const until = Date.now() + runMs;
    await Promise.all(
      breakers.map(async (b) => {
        while (Date.now() < until) {
          await b
            .call(async (signal) => {
              const res = await fetch(`${provider.url}/send`, { method: 'POST', body: '{}', signal });
              await res.body?.cancel();
            })
            .catch((e) => (e instanceof CircuitOpenError ? sleep(10) : undefined));
        }
      }),
    );
    const bound = options.failureThreshold + options.halfOpenMaxCalls * opens + breakers.length;
    log.line(
      'fleet',
      `provider saw ${provider.received} calls in ${runMs} ms over ${opens} open periods; bound failureThreshold + halfOpenMaxCalls per period + one per runtime for the sync delay = ${bound}`,
    );
    return { calls: provider.received, bound };
  } finally {
    await provider.close();
    await Promise.all(runtimes.map((rt) => rt.stop()));
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect().then(
      () => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end()),
      () => {},
    );
  }
}
