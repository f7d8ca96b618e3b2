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

/** The real clock: `Date.now`, Node timers, and `setImmediate` for the end of a turn. */
export const systemClock: Clock = {
  now: Date.now,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  afterTurn: (fn) => {
    setImmediate(fn);
  },
};
