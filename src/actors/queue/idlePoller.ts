import type { Clock } from '../../core/clock.js';
import type { TaskStore } from '../../stores/store.js';

/**
 * Idle queues of one runtime ask the store for work at most this many times per
 * poll period, however many queues there are: with more idle queues than this,
 * each one looks less often (1,000 idle queues at `pollMs: 1000`: each every ~16 s).
 * Work this process adds, tasks it knows will fall due and (on Postgres) work
 * other processes add still wake a queue at once; only the fallback poll for
 * work made elsewhere is rationed.
 */
export const IDLE_POLLS_PER_PERIOD = 64;

/** One queue waiting for work, as the poller sees it. */
export interface PollEntry {
  readonly queue: string;
  readonly pollMs: number;
  /** When the queue last looked at the store (a claim round or a poll): it is due again `pollMs` later. */
  lastLook: number;
  /** The store says something is due: run a claim round. */
  wake(): void;
  /** The store says the next thing falls due at `at` (later than now). */
  dueAt(at: number): void;
}

/**
 * The one poll timer of a runtime's queues. Each period (the shortest `pollMs`
 * of the queues it watches) it asks the store `nextDueAt` for the queues due a
 * look, at most `IDLE_POLLS_PER_PERIOD` of them, longest-waiting first (the
 * others stay due and go first next period). A queue whose work is due is
 * woken; one whose next deadline is known arms its own timer for it.
 */
export class IdlePoller {
  private readonly entries = new Set<PollEntry>();
  private timer: unknown;
  private periodMs = Number.POSITIVE_INFINITY;
  private ticking = false;

  constructor(
    private readonly store: Pick<TaskStore, 'nextDueAt'>,
    private readonly clock: Clock,
    private readonly report: (error: unknown, detail: string) => void,
  ) {}

  /** Starts watching `entry` (idempotent). */
  add(entry: PollEntry): void {
    if (this.entries.has(entry)) return;
    this.entries.add(entry);
    if (entry.pollMs < this.periodMs) {
      this.periodMs = entry.pollMs;
      this.rearm();
    }
  }

  /** Stops watching `entry`; the timer goes with the last one. */
  remove(entry: PollEntry): void {
    if (!this.entries.delete(entry)) return;
    if (this.entries.size === 0) {
      this.periodMs = Number.POSITIVE_INFINITY;
      this.clear();
    } else if (entry.pollMs === this.periodMs) {
      let min = Number.POSITIVE_INFINITY;
      for (const e of this.entries) if (e.pollMs < min) min = e.pollMs;
      if (min !== this.periodMs) {
        this.periodMs = min;
        this.rearm();
      }
    }
  }

  /** How many queues it watches. */
  get size(): number {
    return this.entries.size;
  }

  private clear(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private rearm(): void {
    this.clear();
    if (this.entries.size === 0 || this.ticking) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.periodMs);
  }

  private async tick(): Promise<void> {
    this.ticking = true;
    try {
      const now = this.clock.now();
      // Rounded to the nearest tick: a queue that looked a little after the last tick is not put off a whole period.
      const slack = this.periodMs / 2;
      const due: PollEntry[] = [];
      for (const e of this.entries) {
        if (e.lastLook + e.pollMs > now + slack) continue;
        due.push(e);
        if (due.length === IDLE_POLLS_PER_PERIOD) break;
      }
      for (const e of due) {
        // Moved to the back: the next period starts with those that waited longest.
        this.entries.delete(e);
        this.entries.add(e);
        e.lastLook = now;
      }
      let failure: unknown;
      await Promise.all(
        due.map(async (e) => {
          try {
            const at = await this.store.nextDueAt(e.queue);
            if (!this.entries.has(e) || at === undefined) return;
            if (at <= this.clock.now()) e.wake();
            else e.dueAt(at);
          } catch (error) {
            failure ??= error;
          }
        }),
      );
      if (failure !== undefined) this.report(failure, `polling ${due.length} idle queue(s) for work failed`);
    } finally {
      this.ticking = false;
      this.rearm();
    }
  }
}

const pollers = new WeakMap<object, IdlePoller>();

/** The poller shared by every queue of the runtime whose host is `owner`. */
export function idlePollerFor(
  owner: object,
  store: Pick<TaskStore, 'nextDueAt'>,
  clock: Clock,
  report: (error: unknown, detail: string) => void,
): IdlePoller {
  let poller = pollers.get(owner);
  if (!poller) pollers.set(owner, (poller = new IdlePoller(store, clock, report)));
  return poller;
}
