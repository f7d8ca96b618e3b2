import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRuntime, type QueueStats, type Store } from '../../index.js';
import type { DemoLog } from '../demoLog.js';

/** A profile as service A owns it; `version` grows with every update. */
interface Profile {
  userId: string;
  version: number;
  name: string;
  email: string;
}

/** When a downstream answers 503: a list of [fromMs, toMs) windows since the start. */
type Outages = Array<[number, number]>;

/** Whether a downstream answers its `n`-th request (1-based) with 503. */
export type Failing = (n: number) => boolean;

/**
 * A small seeded generator (mulberry32): the same seed gives the same
 * sequence, so the demo's flapping service fails the same requests on every run.
 */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The demo's outages, counted in requests rather than milliseconds so that
 * timing cannot change them: C is down for its first 6 requests, then flaps
 * (each of its next 24 requests fails with chance 0.4, drawn from `seed`);
 * D fails its requests 4 to 6.
 */
export function demoOutages(seed = 7): Record<string, Failing> {
  const random = seeded(seed);
  const flaps = new Set<number>();
  for (let n = 7; n <= 30; n++) if (random() < 0.4) flaps.add(n);
  return { C: (n) => n <= 6 || flaps.has(n), D: (n) => n >= 4 && n <= 6 };
}

/** Timings and sizes of one run; the defaults make the demo, tests pass smaller ones. */
export interface ProfileSyncOptions {
  users?: number;
  /** Update rounds: every user is updated once per round. */
  rounds?: number;
  roundGapMs?: number;
  /** Windows in which each downstream is down, in time since the start. */
  outages?: Record<string, Outages>;
  /** Which requests each downstream fails, by count (default `demoOutages()` when `outages` is not given either). */
  failing?: Record<string, Failing>;
  /**
   * Deliveries each queue runs at once (default 3). Each user's updates still
   * reach a service one after another (`groupBy: 'userId'`, `groupConcurrency: 1`);
   * the outages are counted in requests, so the totals are the same on every run.
   */
  concurrency?: number;
  /** How often the audit schedule checks what each service holds (default 250). */
  auditEveryMs?: number;
  store?: Store;
}

/** What a run ends with, for the integration test. */
export interface ProfileSyncResult {
  latest: Map<string, number>;
  /** service → userId → version held. */
  held: Record<string, Map<string, number>>;
  /** service → versions it applied per user, in apply order (must only grow). */
  applied: Record<string, Map<string, number[]>>;
  staleIgnored: Record<string, number>;
  /** service → events recorded for its durable subscription (one per profile update). */
  enqueued: Record<string, number>;
  stats: Record<string, QueueStats>;
  breakerEvents: string[];
  requests: Record<string, number>;
  /** service → the most users it had requests in flight for at once (more than 1: users ran in parallel). */
  usersAtOnce: Record<string, number>;
  /** service → requests that arrived while an earlier one for the same user was still in flight (0: per-user order). */
  sameUserAtOnce: Record<string, number>;
  /** Audits the schedule ran, in order: service → users holding the latest version. */
  audits: Record<string, number>[];
}

const SERVICES = ['B', 'C', 'D'] as const;

/** The deliveries of one subscription under way, by user: how many users at once, and whether one user ever had two. */
class InFlight {
  usersAtOnce = 0;
  sameUserAtOnce = 0;
  private readonly running = new Map<string, number>();

  /** Runs `fn` as a delivery for `user`. */
  async run<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const here = (this.running.get(user) ?? 0) + 1;
    this.running.set(user, here);
    if (here > 1) this.sameUserAtOnce++;
    this.usersAtOnce = Math.max(this.usersAtOnce, this.running.size);
    try {
      return await fn();
    } finally {
      const left = this.running.get(user)! - 1;
      if (left === 0) this.running.delete(user);
      else this.running.set(user, left);
    }
  }
}

/** A downstream service: PUT /profiles/<id> applies a newer version, ignores a stale one. */
class Downstream {
  readonly held = new Map<string, number>();
  readonly applied = new Map<string, number[]>();
  staleIgnored = 0;
  requests = 0;
  private server: Server | undefined;
  url = '';

  constructor(
    readonly name: string,
    private readonly outages: Outages,
    private readonly t0: number,
    private readonly failing: Failing = () => false,
  ) {}

  /** Whether the request just counted gets a 503. */
  isDown(): boolean {
    const t = Date.now() - this.t0;
    return this.failing(this.requests) || this.outages.some(([from, to]) => t >= from && t < to);
  }

  async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      this.requests++;
      if (this.isDown()) {
        res.writeHead(503).end('down');
        return;
      }
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const p = JSON.parse(body) as Profile;
        const have = this.held.get(p.userId) ?? 0;
        // Idempotent and ordered by version: a replay or a late old version changes nothing.
        if (p.version > have) {
          this.held.set(p.userId, p.version);
          const list = this.applied.get(p.userId) ?? [];
          list.push(p.version);
          this.applied.set(p.userId, list);
        } else this.staleIgnored++;
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/**
 * Runs the profile-sync scenario: service A updates profiles and publishes
 * `profile.updated`; each downstream service (B, C, D, small HTTP services on
 * localhost) has its own durable bus subscription, so every update reaches each
 * one at least once. Deliveries are grouped by user with one at a time per
 * user: one user's updates reach a service in publish order, through retries
 * and breaker waits, while different users are delivered in parallel. C is down
 * at first and then flaps; its subscription runs through a breaker so the
 * outage costs no attempts and no retry storm. A schedule audits every
 * `auditEveryMs` how many users each service holds the latest profile of.
 */
export async function runProfileSync(log: DemoLog, options: ProfileSyncOptions = {}): Promise<ProfileSyncResult> {
  const users = options.users ?? 6;
  const rounds = options.rounds ?? 3;
  const roundGapMs = options.roundGapMs ?? 150;
  const outages = options.outages ?? {};
  const failing = options.failing ?? (options.outages ? {} : demoOutages());
  const t0 = Date.now();
  const services = Object.fromEntries(
    SERVICES.map((s) => [s, new Downstream(s, outages[s] ?? [], t0, failing[s])]),
  ) as Record<string, Downstream>;
  const rt = createRuntime(options.store ? { store: options.store } : {});
  const breakerEvents: string[] = [];
  const enqueued: Record<string, number> = {};
  const profiles = new Map<string, Profile>();
  const audits: Record<string, number>[] = [];
  const inFlight = Object.fromEntries(SERVICES.map((s) => [s, new InFlight()])) as Record<string, InFlight>;
  let inSync: (() => void) | undefined;
  try {
    for (const s of Object.values(services)) await s.listen();
    rt.bus.subscribe('breaker.>', (_p, e) => {
      breakerEvents.push(e.type);
      log.line('breaker', `${e.type}`, e.type.endsWith('.opened') ? 'failure' : undefined);
    });
    // Which task a failure hits depends on timing; that a delivery failed and is retried does not.
    rt.bus.subscribe('task.*.retrying', (p) => {
      const t = p as { queue: string; error: string };
      log.line(t.queue, `a delivery failed (${t.error}); retrying with backoff`, 'failure');
    });
    // One durable subscription per downstream service: each is its own queue (`bus:sync-B`, ...) with
    // retries, backoff and dead letters, and C's and D's wait out their breaker instead of burning attempts.
    for (const name of SERVICES) {
      rt.breaker(`svc-${name}`, { failureThreshold: 3, resetTimeoutMs: 250, callTimeoutMs: 2000 });
      enqueued[name] = 0;
      rt.bus.subscribe(
        'profile.updated',
        (p: Profile, _event, delivery) =>
          inFlight[name]!.run(p.userId, async () => {
            const res = await fetch(`${services[name]!.url}/profiles/${p.userId}`, {
              method: 'PUT',
              body: JSON.stringify(p),
              headers: { 'content-type': 'application/json' },
              signal: delivery.signal,
            });
            await res.text();
            if (!res.ok) throw new Error(`HTTP ${res.status} from ${name}`);
          }),
        {
          durable: `sync-${name}`,
          // Per-user order, users in parallel: a user's next update waits for the one before it, even while
          // that one waits out a retry backoff or C's open breaker.
          groupBy: 'userId',
          groupConcurrency: 1,
          concurrency: options.concurrency ?? 3,
          breaker: `svc-${name}`,
          retry: { initialDelayMs: 20, maxDelayMs: 400 },
        },
      );
    }
    const queues = Object.fromEntries(SERVICES.map((name) => [name, rt.queue(`bus:sync-${name}`)]));
    // The audit: a schedule enqueues one task per slot on this queue, exactly once per slot across processes.
    rt.queue('profile-audit', {
      // The schedule writes its tasks to the store; a short poll picks each one up within its slot.
      pollMs: 50,
      handler: () => {
        const audit = Object.fromEntries(
          SERVICES.map((s) => [s, [...profiles].filter(([id, p]) => services[s]!.held.get(id) === p.version).length]),
        );
        audits.push(audit);
        const all = profiles.size > 0 && SERVICES.every((s) => audit[s] === profiles.size);
        log.line(
          'schedule.profile-audit',
          `${SERVICES.map((s) => `${s} ${audit[s]}/${profiles.size}`).join(', ')} users up to date`,
        );
        if (all) inSync?.();
      },
    });
    const audit = rt.schedule('profile-audit', {
      everyMs: options.auditEveryMs ?? 250,
      queue: 'profile-audit',
      payload: { check: 'latest profile per user' },
    });
    await rt.start();

    // Service A: the source of truth. It only publishes; the durable subscriptions record each update for every service.
    for (let round = 1; round <= rounds; round++) {
      for (let u = 1; u <= users; u++) {
        const userId = `user-${u}`;
        const prev = profiles.get(userId);
        const next: Profile = {
          userId,
          version: (prev?.version ?? 0) + 1,
          name: `User ${u}`,
          email: `user${u}+r${round}@example.com`,
        };
        profiles.set(userId, next);
        rt.bus.publish('profile.updated', next);
        for (const name of SERVICES) enqueued[name]!++;
      }
      // Recorded for every durable subscription before the round counts as done.
      await rt.bus.flush();
      log.line(
        'service A',
        `round ${round}: updated ${users} profiles, published ${users} events for ${SERVICES.length} services`,
      );
      await new Promise((r) => setTimeout(r, roundGapMs));
    }
    await Promise.all(Object.values(queues).map((q) => q.drain()));
    // The next audit finds every service up to date.
    await new Promise<void>((resolve) => {
      inSync = resolve;
    });
    await audit.remove();
    await rt.queue('profile-audit').drain();
    const stats = Object.fromEntries(
      await Promise.all(SERVICES.map(async (name) => [name, await queues[name]!.stats()] as const)),
    );
    const latest = new Map([...profiles].map(([id, p]) => [id, p.version]));
    const result: ProfileSyncResult = {
      latest,
      held: Object.fromEntries(SERVICES.map((s) => [s, services[s]!.held])),
      applied: Object.fromEntries(SERVICES.map((s) => [s, services[s]!.applied])),
      staleIgnored: Object.fromEntries(SERVICES.map((s) => [s, services[s]!.staleIgnored])),
      enqueued,
      stats,
      breakerEvents,
      requests: Object.fromEntries(SERVICES.map((s) => [s, services[s]!.requests])),
      usersAtOnce: Object.fromEntries(SERVICES.map((s) => [s, inFlight[s]!.usersAtOnce])),
      sameUserAtOnce: Object.fromEntries(SERVICES.map((s) => [s, inFlight[s]!.sameUserAtOnce])),
      audits,
    };
    for (const name of SERVICES) {
      const converged = [...latest].every(([id, v]) => services[name]!.held.get(id) === v);
      log.line(
        `service ${name}`,
        `${converged ? 'converged' : 'NOT converged'}: ${stats[name]!.succeeded} deliveries in ${services[name]!.requests} requests`,
        converged ? undefined : 'failure',
      );
      const inOrder = [...services[name]!.applied.values()].every((v) => v.every((x, i) => x === i + 1));
      log.line(
        `service ${name}`,
        `${inOrder ? "each user's updates applied in publish order" : 'updates applied OUT OF ORDER'}; up to ${result.usersAtOnce[name]} users at once`,
        inOrder ? undefined : 'failure',
      );
    }
    return result;
  } finally {
    await rt.stop();
    for (const s of Object.values(services)) await s.close();
  }
}

/** The `npm start` scenario. */
export async function demo(log: DemoLog): Promise<void> {
  const r = await runProfileSync(log);
  const ok = SERVICES.every((s) => [...r.latest].every(([id, v]) => r.held[s]!.get(id) === v));
  const total = Object.values(r.enqueued).reduce((a, b) => a + b, 0);
  const dead = Object.values(r.stats).reduce((a, s) => a + s.dead, 0);
  log.summary(
    `profile sync: ${total} deliveries to 3 services ${ok ? 'converged' : 'did NOT converge'} (${dead} lost), each user's updates in order, users in parallel; service C was down and flapping, its breaker held it to ${r.requests.C} requests for ${r.enqueued.C} deliveries`,
  );
}
