import type { ActorRefFrom } from 'xstate';
import type { Clock } from '../../core/clock.js';
import { describeError } from '../../core/json.js';
import {
  afterOutcome,
  afterSuccesses,
  type BreakerEvent,
  type BreakerState,
  type breakerMachine,
  type ClosedCounts,
  trips,
} from '../../machines/breaker.js';
import type { FleetBreakerRow, FleetBreakers } from '../../stores/store.js';
import type { ResolvedBreakerOptions } from './options.js';

/** A closed-state outcome waiting to reach the fleet's counts, with the fleet period it happened in. */
interface Pending {
  period: number;
  kind: 'F' | 'W';
  successesBefore: number;
}

/** What the link needs of its breaker's effects. */
export interface FleetLinkHost {
  clock: Clock;
  publish(topic: string, payload: unknown): void;
  report(error: unknown, detail: string): void;
  /** The fleet opened at `openedAt` (the machine was just told): `retryAfterMs` counts from there. */
  openedAt(at: number): void;
}

const initialRow: FleetBreakerRow = {
  period: 0,
  state: 'closed',
  openedAt: 0,
  openMs: 0,
  failures: 0,
  window: '',
  trials: [],
  successes: 0,
};

/**
 * The link between one process's breaker and the fleet's shared state
 * (`scope: 'fleet'`, issue #18). The machine stays the source of truth of this
 * process's mode; the link turns the fleet's changes into machine events
 * (`fleet.opened`, `fleet.closed`, `fleet.lost`, `fleet.joined`).
 *
 * - Closed: outcomes are counted by the process and batched; a batch reaches
 *   the store at most `fleetSyncMs` after its first outcome, and the store
 *   applies it to the fleet's counts with the machine's own rules
 *   (`afterOutcome`, `trips`). Calls never wait on the store.
 * - When the fleet trips, the period moves and every process hears it by
 *   NOTIFY (or by polling every `fleetSyncMs` while notifications are down).
 * - Half-open: a trial runs only once the store granted one of the period's
 *   `halfOpenMaxCalls` slots (a lease of `callTimeoutMs` plus
 *   max(1 s, 10 × `fleetSyncMs`), so a crashed process's slot comes back). A failed trial opens the next period for all;
 *   `successThreshold` successful trials, counted for the fleet, close it.
 * - The store unreachable: the machine counts and trips locally
 *   (`fleet.lost`, bus `breaker.<name>.fleetLost`, `stats.fleet = 'local'`);
 *   the store is probed every `10 × fleetSyncMs` and rejoined (`fleetJoined`).
 */
export class FleetLink {
  /** The fleet counts for this process (the machine's `shared`). */
  joined = false;
  /** The fleet period this process's machine reflects. */
  private period = -1;
  private row: FleetBreakerRow | undefined;
  private pending: Pending[] = [];
  /** Closed-state successes since the last outcome handed to the fleet. */
  private successes = 0;
  private flushTimer: unknown;
  private flushing = false;
  private pollTimer: unknown;
  private listening = false;
  private unwatch: (() => void) | undefined;
  private stopped = false;
  /** Trial leases this process holds in the current period. */
  private leases: number[] = [];
  private readonly counts: ClosedCounts;
  private readonly flushNow = () => {
    this.flushTimer = undefined;
    void this.flush();
  };
  private readonly pollNow = () => {
    this.pollTimer = undefined;
    void this.refresh();
  };

  constructor(
    private readonly name: string,
    private readonly options: ResolvedBreakerOptions,
    private readonly store: FleetBreakers,
    private readonly actor: ActorRefFrom<typeof breakerMachine>,
    private readonly host: FleetLinkHost,
  ) {
    const o = options;
    this.counts = {
      failureThreshold: o.failureThreshold,
      failureRate: o.failureRate,
      slowCallRate: o.slowCallRate,
      minimumCalls: o.minimumCalls,
      windowSize: o.windowSize,
      failures: 0,
      window: '',
    };
  }

  /** The store is open: watch the fleet and join it. */
  start(): void {
    if (this.stopped || this.unwatch) return;
    try {
      this.unwatch = this.store.watchBreakers((name) => {
        if (name === null) {
          this.listening = false;
          this.schedulePoll();
        } else if (name === undefined) {
          this.listening = true;
          void this.refresh();
        } else if (name === this.name) void this.refresh();
      });
    } catch (error) {
      this.lose(error);
      return;
    }
    void this.refresh();
  }

  /** Frees the timers and the watch; later results are ignored. */
  stop(): void {
    this.stopped = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.clear('flushTimer');
    this.clear('pollTimer');
  }

  /** A counted closed-state outcome (`F` failure, `W` slow success) of this process. */
  record(kind: 'F' | 'W'): void {
    if (!this.joined) return;
    this.pending.push({ period: this.period, kind, successesBefore: this.successes });
    this.successes = 0;
    this.armFlush();
  }

  /** A closed-state success of this process: only worth a write when it can change the fleet's counts. */
  success(): void {
    // While the fleet's count is zero (and no rate is kept) a success changes nothing, now or carried later.
    if (!this.joined || !this.successesMatter()) return;
    this.successes++;
    this.armFlush();
  }

  /**
   * Asks the store for one of the period's trial slots: `true` when granted,
   * `false` when refused (the slots are taken, the period is not due, or it
   * moved on), `undefined` when the fleet is out of reach (decide locally).
   */
  async claimTrial(): Promise<boolean | undefined> {
    if (!this.joined) return undefined;
    const now = this.host.clock.now();
    // The slot outlives the trial's timeout by the time its outcome takes to reach the store: a slot
    // freed by expiry before the failed trial's next period is written would admit one trial too many.
    const lease = now + (this.options.callTimeoutMs || this.options.resetTimeoutMs) + leaseMarginMs(this.options);
    const period = this.period;
    let granted = false;
    try {
      const row = await this.store.updateBreaker(this.name, (r) => {
        if (!r || r.period !== period || r.state !== 'open' || now < r.openedAt + r.openMs) return undefined;
        const live = r.trials.filter((t) => t > now);
        if (live.length >= this.options.halfOpenMaxCalls) return undefined;
        granted = true;
        return { ...r, trials: [...live, lease] };
      });
      if (this.stopped) return false;
      if (granted) this.leases.push(lease);
      else this.align(row);
      return granted;
    } catch (error) {
      this.lose(error);
      return undefined;
    }
  }

  /** When a refused trial may be granted: the period's end or its earliest lease, at least 1 ms. */
  trialRetryAfterMs(): number | undefined {
    const r = this.row;
    if (!this.joined || !r || r.state !== 'open') return undefined;
    const now = this.host.clock.now();
    const due = r.openedAt + r.openMs;
    if (now < due) return Math.max(1, due - now);
    const live = r.trials.filter((t) => t > now);
    return live.length === 0 ? 1 : Math.max(1, Math.min(...live) - now);
  }

  /** A granted trial succeeded: the fleet counts it, and closes when `successThreshold` is reached. */
  trialSucceeded(): void {
    const lease = this.leases.shift();
    if (!this.joined || lease === undefined) return;
    const period = this.period;
    const threshold = this.options.successThreshold;
    void this.update((r) => {
      if (!r || r.period !== period || r.state !== 'open') return undefined;
      const successes = r.successes + 1;
      if (successes >= threshold) return { ...initialRow, period: r.period + 1 };
      return { ...r, successes, trials: withoutOne(r.trials, lease) };
    });
  }

  /** A granted trial ended with an error that does not count: its slot is free again. */
  trialReleased(): void {
    const lease = this.leases.shift();
    if (!this.joined || lease === undefined) return;
    const period = this.period;
    void this.update((r) => (r && r.period === period ? { ...r, trials: withoutOne(r.trials, lease) } : undefined));
  }

  /** This process's machine opened by a failed trial (`openMs` with backoff): the fleet's next period begins. */
  reopened(openMs: number): void {
    this.leases = [];
    if (!this.joined) return;
    const period = this.period;
    const now = this.host.clock.now();
    void this.update(
      (r) =>
        r && r.period === period && r.state === 'open'
          ? { ...initialRow, period: r.period + 1, state: 'open', openedAt: now, openMs }
          : undefined,
      // This machine is open already: the period is adopted without an event.
      (row) => {
        this.period = row.period;
        this.row = row;
        this.host.openedAt(now);
      },
    );
  }

  /** `reset()` in this process closes the fleet's circuit too (else the next sync would reopen it). */
  reset(): void {
    this.leases = [];
    this.pending = [];
    this.successes = 0;
    if (!this.joined) return;
    void this.update(
      (r) => ({ ...initialRow, period: (r ?? initialRow).period + 1 }),
      (row) => {
        this.period = row.period;
        this.row = row;
      },
    );
  }

  /**
   * Runs an update. `own(row)` adopts a change this process wrote to match its
   * machine (no event); otherwise, or when another change won, the machine
   * follows the row.
   */
  private async update(
    change: (r: FleetBreakerRow | undefined) => FleetBreakerRow | undefined,
    own?: (row: FleetBreakerRow) => void,
  ): Promise<void> {
    let wrote = false;
    try {
      const row = await this.store.updateBreaker(this.name, (r) => {
        const next = change(r);
        wrote = next !== undefined;
        return next;
      });
      if (this.stopped) return;
      if (wrote && own && row) own(row);
      else this.align(row);
    } catch (error) {
      this.lose(error);
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.stopped || !this.joined) return;
    const batch = this.pending;
    const trailing = this.successes;
    if (batch.length === 0 && trailing === 0) return;
    this.pending = [];
    this.successes = 0;
    this.flushing = true;
    const now = this.host.clock.now();
    try {
      const row = await this.store.updateBreaker(this.name, (r) =>
        applyBatch(r ?? initialRow, batch, trailing, this.counts, now, this.options.resetTimeoutMs),
      );
      if (!this.stopped) this.align(row);
    } catch (error) {
      this.lose(error);
    } finally {
      this.flushing = false;
    }
    if (this.pending.length > 0) this.armFlush();
  }

  /** Reads the fleet's row: joins when out, follows it when in. */
  private async refresh(): Promise<void> {
    if (this.stopped) return;
    let row: FleetBreakerRow | undefined;
    try {
      row = await this.store.readBreaker(this.name);
    } catch (error) {
      this.lose(error);
      return;
    }
    if (this.stopped) return;
    if (this.joined) this.align(row);
    else this.join(row);
    if (!this.listening) this.schedulePoll();
  }

  private join(row: FleetBreakerRow | undefined): void {
    const wasLost = this.period !== -1;
    this.joined = true;
    this.pending = [];
    this.successes = 0;
    this.send({ type: 'fleet.joined' });
    this.host.publish(`breaker.${this.name}.fleetJoined`, { breaker: this.name, rejoined: wasLost });
    const mode = this.mode();
    const fleet = row ?? initialRow;
    if (fleet.state === 'closed' && (mode === 'open' || mode === 'halfOpen')) {
      // Opened locally while the store was out of reach: that evidence opens the fleet.
      const openMs = this.actor.getSnapshot().context.openMs;
      const now = this.host.clock.now();
      this.period = fleet.period;
      void this.update(
        (r) =>
          (r ?? initialRow).state === 'closed'
            ? { ...initialRow, period: (r ?? initialRow).period + 1, state: 'open', openedAt: now, openMs }
            : undefined,
        (written) => {
          this.period = written.period;
          this.row = written;
        },
      );
      return;
    }
    this.align(fleet);
  }

  /** Brings the machine to the fleet's period, when it moved. */
  private align(row: FleetBreakerRow | undefined): void {
    const fleet = row ?? initialRow;
    this.row = fleet;
    this.counts.failures = fleet.failures;
    this.counts.window = fleet.window;
    if (fleet.period === this.period) return;
    this.period = fleet.period;
    this.pending = [];
    this.successes = 0;
    this.leases = [];
    const mode = this.mode();
    if (fleet.state === 'open') {
      if (mode === 'isolated') return;
      this.send({ type: 'fleet.opened', openMs: fleet.openMs });
      this.host.openedAt(fleet.openedAt);
    } else if (mode === 'open' || mode === 'halfOpen') {
      this.send({ type: 'fleet.closed' });
    }
  }

  private lose(error: unknown): void {
    if (this.stopped) return;
    this.clear('flushTimer');
    this.pending = [];
    this.successes = 0;
    this.leases = [];
    if (this.joined) {
      this.joined = false;
      this.send({ type: 'fleet.lost' });
      this.host.publish(`breaker.${this.name}.fleetLost`, { breaker: this.name, error: describeError(error) });
      this.host.report(error, `breaker('${this.name}'): the fleet's store is out of reach; counting locally`);
    }
    if (this.pollTimer === undefined) {
      this.pollTimer = this.host.clock.setTimeout(this.pollNow, this.options.fleetSyncMs * 10);
      unref(this.pollTimer);
    }
  }

  private schedulePoll(): void {
    if (this.stopped || this.listening || this.pollTimer !== undefined) return;
    this.pollTimer = this.host.clock.setTimeout(this.pollNow, this.options.fleetSyncMs);
    unref(this.pollTimer);
  }

  private armFlush(): void {
    if (this.flushTimer !== undefined || this.stopped) return;
    this.flushTimer = this.host.clock.setTimeout(this.flushNow, this.options.fleetSyncMs);
    unref(this.flushTimer);
  }

  private successesMatter(): boolean {
    return this.counts.failures > 0 || this.counts.failureRate !== undefined || this.counts.slowCallRate !== undefined;
  }

  private mode(): BreakerState {
    return this.actor.getSnapshot().value as BreakerState;
  }

  private send(event: BreakerEvent): void {
    if (this.actor.getSnapshot().status === 'active') this.actor.send(event);
  }

  private clear(key: 'flushTimer' | 'pollTimer'): void {
    if (this[key] !== undefined) this.host.clock.clearTimeout(this[key]);
    this[key] = undefined;
  }
}

/**
 * The fleet's row after one process's batch: the outcomes of the current
 * closed period are applied in order with the machine's rules; the first that
 * trips opens the next period (what followed it started before the open, and
 * is dropped like a stale visit). Exported for the property test.
 */
export function applyBatch(
  row: FleetBreakerRow,
  batch: readonly Pending[],
  trailing: number,
  settings: ClosedCounts,
  now: number,
  openMs: number,
): FleetBreakerRow | undefined {
  if (row.state !== 'closed') return undefined;
  let c = { ...settings, failures: row.failures, window: row.window };
  let changed = false;
  for (const o of batch) {
    if (o.period !== row.period) continue;
    const after = afterOutcome(c, o);
    if (trips(c, after)) return { ...initialRow, period: row.period + 1, state: 'open', openedAt: now, openMs };
    c = { ...c, ...after };
    changed = true;
  }
  if (trailing > 0) {
    c = { ...c, ...afterSuccesses(c, trailing) };
    changed = true;
  }
  return changed ? { ...row, failures: c.failures, window: c.window } : undefined;
}

/** How long a trial's slot outlives its timeout: long enough for its outcome to be written. */
function leaseMarginMs(o: ResolvedBreakerOptions): number {
  return Math.max(1000, 10 * o.fleetSyncMs);
}

function withoutOne(list: readonly number[], value: number): number[] {
  const i = list.indexOf(value);
  return i < 0 ? [...list] : [...list.slice(0, i), ...list.slice(i + 1)];
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void } | undefined)?.unref?.();
}
