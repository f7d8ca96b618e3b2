import type { Clock } from '../../core/clock.js';
import type { QueuePauses, Store } from '../../stores/store.js';

/** How often a runtime re-reads the store's pause flags (notifications, where the store has them, come sooner). */
export const PAUSE_POLL_MS = 1000;

interface Subscription {
  queue: string;
  onChange: (paused: boolean) => void;
  last: boolean | undefined;
}

/**
 * Follows the pause flags a store keeps for its queues (`QueuePauses`) for
 * every queue of the runtimes on one store object: one read per poll whatever
 * the number of queues, and one LISTEN where the store offers it.
 */
class PauseFollower {
  private readonly subs = new Set<Subscription>();
  private timer: unknown;
  private unwatch: (() => void) | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private failing = false;
  /** The flags as last read, while anyone follows: a queue starting now answers from it (no read per queue). */
  private known: Set<string> | undefined;

  constructor(
    private readonly store: Store & QueuePauses,
    private readonly clock: Clock,
    private readonly report: (error: unknown, detail: string) => void,
  ) {}

  /** Calls `onChange` with the flag of `queue` now and whenever it changes; resolves `ready` after the first read. */
  follow(queue: string, onChange: (paused: boolean) => void): { ready: Promise<void>; stop: () => void } {
    const sub: Subscription = { queue, onChange, last: undefined };
    this.subs.add(sub);
    if (this.subs.size === 1) {
      this.unwatch = this.store.watchPauses?.(() => void this.refresh());
      this.schedule();
    }
    let ready: Promise<void>;
    if (this.known) {
      // Thousands of queues starting one after another: one read for all of them, at most a poll old.
      sub.last = this.known.has(queue);
      if (sub.last) onChange(true);
      ready = Promise.resolve();
    } else ready = this.refresh();
    return {
      ready,
      stop: () => {
        if (!this.subs.delete(sub) || this.subs.size > 0) return;
        this.clock.clearTimeout(this.timer);
        this.timer = undefined;
        this.unwatch?.();
        this.unwatch = undefined;
        this.known = undefined;
      },
    };
  }

  /** Reads the flags and tells each queue whose flag changed; a call during a read reads once more after it. */
  refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readOnce();
      } while (this.again && this.subs.size > 0);
    })().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    let paused: Set<string>;
    try {
      paused = new Set(await this.store.pausedQueues());
      this.failing = false;
      if (this.subs.size > 0) this.known = paused;
    } catch (error) {
      // One report per streak of failures: the poll retries, and a store that is down says so elsewhere too.
      if (!this.failing) this.report(error, 'reading the queue pause flags failed (retrying)');
      this.failing = true;
      return;
    }
    for (const sub of this.subs) {
      const now = paused.has(sub.queue);
      if (sub.last === now) continue;
      sub.last = now;
      sub.onChange(now);
    }
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      if (this.subs.size === 0) return;
      void this.refresh().finally(() => {
        if (this.subs.size > 0) this.schedule();
      });
    }, PAUSE_POLL_MS);
  }
}

const followers = new WeakMap<Store, PauseFollower>();

/** Follows the store's pause flag of `queue` (see `PauseFollower`); the first answer comes before `ready` resolves. */
export function followStorePause(
  store: Store & QueuePauses,
  clock: Clock,
  report: (error: unknown, detail: string) => void,
  queue: string,
  onChange: (paused: boolean) => void,
): { ready: Promise<void>; stop: () => void } {
  let follower = followers.get(store);
  if (!follower) followers.set(store, (follower = new PauseFollower(store, clock, report)));
  return follower.follow(queue, onChange);
}

/** Re-reads the store's pause flags now (after this process changed one, so its own queues follow at once). */
export function refreshStorePauses(store: Store): Promise<void> {
  return followers.get(store)?.refresh() ?? Promise.resolve();
}
