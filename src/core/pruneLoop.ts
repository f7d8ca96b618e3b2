import type { Clock } from './clock.js';

/**
 * The most records one prune statement deletes: short transactions (and, on
 * Postgres, a short hold of the pruning advisory lock), so claims, settles
 * and saga writes never wait long behind one.
 */
export const PRUNE_BATCH = 500;

/** What one prune statement did: how many it deleted, and whether another process holds the pruning lock. */
export interface PruneBatch {
  deleted: number;
  /** Another process prunes now (Postgres advisory lock): this pass leaves the rest to it. */
  busy?: boolean;
}

/**
 * What the background pruners (a queue's finished tasks, a saga's finished
 * runs) share: one pass at a time, a pass deleting in small batches and
 * yielding to the event loop between them, and one timer on the runtime
 * clock for the next pass. When to prune is each pruner's own business.
 */
export class PruneLoop {
  private timer: unknown;
  private timerAt = Number.POSITIVE_INFINITY;
  private pass: Promise<void> | undefined;

  constructor(
    private readonly clock: Clock,
    /** Called when the timer fires (it is cleared first). */
    private readonly onTimer: () => void,
    /** Stopped until `start`: a pruner made before its owner starts makes no store call. */
    public stopped = false,
  ) {}

  /** True while a pass runs. */
  get busy(): boolean {
    return this.pass !== undefined;
  }

  start(): void {
    this.stopped = false;
  }

  /** Stops the timer and waits for the pass in progress (it ends after its current batch). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    await this.pass;
  }

  /** Arms the timer for `at` unless stopped or it is already due sooner. */
  armBy(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.onTimer();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /**
   * Runs `pass` unless one runs (then answers that one). A failure goes to
   * `onError` (pruning is housekeeping: the next pass tries again); `after`
   * runs once the pass ended, to arm the next.
   */
  run(pass: () => Promise<unknown>, onError: (error: unknown) => void, after: () => void): Promise<void> {
    if (this.pass) return this.pass;
    this.pass = pass()
      .then(() => {}, onError)
      .finally(() => {
        this.pass = undefined;
        after();
      });
    return this.pass;
  }

  /**
   * Calls `batch` until it deletes fewer than `PRUNE_BATCH`, says another
   * process prunes (`busy`), or the loop stops; resolves to the total deleted.
   */
  async batches(batch: () => Promise<PruneBatch>): Promise<{ deleted: number; busy: boolean }> {
    let deleted = 0;
    for (;;) {
      const r = await batch();
      deleted += r.deleted;
      if (r.busy) return { deleted, busy: true };
      if (r.deleted < PRUNE_BATCH || this.stopped) return { deleted, busy: false };
      // Let the claims, settles and sagas on this loop go on between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
