/**
 * The time source of a runtime. XState's `SimulatedClock` fits this shape, so
 * tests drive every timer of a runtime (XState `after` and keel's own) from one
 * simulated clock.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /**
   * Optional: runs `fn` once the current event-loop turn has ended (the system
   * clock uses `setImmediate`). With it, work started in one turn can share one
   * clock read taken at the turn's end; without it, every such stamp reads `now()`.
   */
  afterTurn?(fn: () => void): void;
}

let turnEnds: (() => void)[] = [];

// One immediate per turn for every caller (10,000 breakers called in one turn need not queue 10,000).
function endTurn(): void {
  const due = turnEnds;
  turnEnds = [];
  let failure: { error: unknown } | undefined;
  for (const fn of due) {
    try {
      fn();
    } catch (error) {
      failure ??= { error };
    }
  }
  // As a throwing setImmediate callback would: after the others ran.
  if (failure) throw failure.error;
}

/** The longest delay a Node timer keeps: a longer one fires after 1 ms. */
const MAX_NODE_DELAY = 2 ** 31 - 1;

/** A timer longer than Node allows, kept as a chain of shorter ones; `current` is the one to clear. */
class LongTimer {
  current: ReturnType<typeof setTimeout>;
  constructor(fn: (...args: unknown[]) => void, ms: number) {
    const due = Date.now() + ms;
    const arm = (): ReturnType<typeof setTimeout> =>
      setTimeout(
        () => {
          const left = due - Date.now();
          if (left > 0) this.current = arm();
          else fn();
        },
        Math.min(MAX_NODE_DELAY, Math.max(0, due - Date.now())),
      );
    this.current = arm();
  }
}

/**
 * The real clock: `Date.now`, Node timers, and one `setImmediate` for the end
 * of each turn. A delay above 2^31-1 ms (24.8 days: a task delayed by a month,
 * a long backoff) is re-armed until it is due, where a bare Node timer would
 * fire after 1 ms.
 */
export const systemClock: Clock = {
  now: Date.now,
  setTimeout: (fn, ms) => (ms > MAX_NODE_DELAY ? new LongTimer(fn, ms) : setTimeout(fn, ms)),
  clearTimeout: (handle) =>
    clearTimeout(handle instanceof LongTimer ? handle.current : (handle as ReturnType<typeof setTimeout>)),
  afterTurn: (fn) => {
    if (turnEnds.push(fn) === 1) setImmediate(endTurn);
  },
};
