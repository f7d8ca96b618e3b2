import type { Clock } from '../core/clock.js';

interface Timer {
  id: number;
  at: number;
  fn: (...args: unknown[]) => void;
}

/** Lets promise callbacks and other queued work run (a macrotask turn). */
export function settle(turns = 3): Promise<void> {
  let p = Promise.resolve();
  for (let i = 0; i < turns; i++) p = p.then(() => new Promise((r) => setImmediate(r)));
  return p;
}

/** Options of a `TestClock`. */
export interface TestClockOptions {
  /**
   * Simulate the ends of event-loop turns (`Clock.afterTurn`) like the system
   * clock does: work queued for a turn's end runs on `endTurn()`, and before
   * time moves in `advance()`. Off: the clock has no `afterTurn`.
   */
  turns?: boolean;
}

/**
 * A simulated clock for tests: time moves only on `advance`, which fires due
 * timers in order and lets promise chains settle between them.
 */
export class TestClock implements Clock {
  private time: number;
  private nextId = 1;
  private timers: Timer[] = [];
  private turnEnds: (() => void)[] = [];
  /** Present only with `{ turns: true }`. */
  readonly afterTurn?: (fn: () => void) => void;

  constructor(start = 0, options: TestClockOptions = {}) {
    this.time = start;
    if (options.turns) this.afterTurn = (fn) => void this.turnEnds.push(fn);
  }

  /** Ends the current simulated turn: runs the work queued with `afterTurn`, in order. */
  endTurn(): void {
    const due = this.turnEnds;
    this.turnEnds = [];
    for (const fn of due) fn();
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: (...args: unknown[]) => void, ms: number): number {
    const id = this.nextId++;
    this.timers.push({ id, at: this.time + Math.max(0, ms || 0), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** How many timers are waiting. */
  get pending(): number {
    return this.timers.length;
  }

  /** Milliseconds until the next timer fires, or undefined when none waits. */
  get nextIn(): number | undefined {
    if (this.timers.length === 0) return undefined;
    return Math.min(...this.timers.map((t) => t.at)) - this.time;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    await settle();
    this.endTurn();
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.timers)
        if (t.at <= until && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = Math.max(this.time, next.at);
      next.fn();
      await settle();
      this.endTurn();
    }
    this.time = until;
  }
}
