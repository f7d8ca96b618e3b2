import type { Clock } from '../../core/clock.js';
import { invalidOptions } from '../../core/errors.js';
import { describeValue, OptionReader } from '../../core/options.js';
import { PRUNE_BATCH, PruneLoop } from '../../core/pruneLoop.js';
import type { FinishedState, KeepRule, Retention, TaskStore } from '../../stores/store.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * What a queue keeps of its finished tasks unless told otherwise: enough to
 * look at recent outcomes, bounded for ever (a queue never holds more than
 * 1,000 succeeded + 10,000 dead + 1,000 cancelled finished tasks, and none
 * older than these ages).
 */
export const DEFAULT_RETENTION: Readonly<Retention> = Object.freeze({
  succeeded: Object.freeze({ count: 1_000, ageMs: DAY_MS }),
  dead: Object.freeze({ count: 10_000, ageMs: 7 * DAY_MS }),
  cancelled: Object.freeze({ count: 1_000, ageMs: DAY_MS }),
});

/** How often the pruner of a queue looks for finished tasks to delete. */
export const PRUNE_EVERY_MS = 1_000;
export { PRUNE_BATCH } from '../../core/pruneLoop.js';

/** What `rt.queue(name, { retention })` accepts: per finished state, a count and/or an age; omitted parts keep their default. */
export type RetentionOptions = { [S in FinishedState]?: { count?: number; ageMs?: number } };

const STATES: readonly FinishedState[] = ['succeeded', 'dead', 'cancelled'];

/** Checks the `retention` option and fills in defaults; bad input throws `INVALID_OPTIONS` naming the option. */
export function parseRetention(owner: string, value: unknown): Retention {
  if (value === undefined) return { ...DEFAULT_RETENTION };
  const o = new OptionReader(owner, value, STATES, 'a retention state', 'retention');
  const out = {} as Retention;
  for (const state of STATES) {
    const given = o.values[state];
    const fallback = DEFAULT_RETENTION[state];
    if (given === undefined) {
      out[state] = { ...fallback };
      continue;
    }
    const r = new OptionReader(
      `${owner} retention.${state}`,
      given,
      ['count', 'ageMs'],
      'a retention rule',
      `retention.${state}`,
    );
    const count = r.int('count', fallback.count, 0, true);
    const age = r.values.ageMs;
    if (age !== undefined && (typeof age !== 'number' || Number.isNaN(age) || age < 0)) {
      throw invalidOptions(
        owner,
        `retention.${state}.ageMs`,
        `must be a number >= 0 or Infinity, got ${describeValue(age)}`,
      );
    }
    out[state] = { count, ageMs: (age as number | undefined) ?? fallback.ageMs } satisfies KeepRule;
  }
  return out;
}

/**
 * The background pruner of one queue. It makes no store call while the queue
 * is idle (thousands of idle queues cost nothing): once this process finished
 * a task of the queue (`finished`), it prunes `PRUNE_EVERY_MS` later, in
 * batches of `PRUNE_BATCH` until nothing is left to delete, and again each
 * period while tasks keep finishing. When they stop, one last round runs when
 * the newest finished task reaches its state's `ageMs`, so age-based deletion
 * happens without any later activity. Between batches it yields to the event
 * loop; on a shared store the store lets one process prune a queue at a time.
 */
export class Pruner {
  private readonly loop: PruneLoop;
  /** A task finished here since the last round began. */
  private dirty = false;
  /** Per state, when the newest task this process finished reaches its age limit (pending rounds). */
  private readonly ageDue = new Map<FinishedState, number>();

  constructor(
    private readonly queue: string,
    private readonly store: TaskStore,
    private readonly clock: Clock,
    private readonly retention: Retention,
    private readonly report: (error: unknown, detail: string) => void,
  ) {
    this.loop = new PruneLoop(clock, () => this.round(), true);
  }

  start(): void {
    this.loop.start();
  }

  /** Stops the timer and waits for a round in progress. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** A task of the queue ended in `state` here: a round is due soon, and one when its age runs out. */
  finished(state: FinishedState): void {
    if (this.loop.stopped) return;
    this.dirty = true;
    const age = this.retention[state].ageMs;
    if (Number.isFinite(age)) this.ageDue.set(state, this.clock.now() + age);
    if (!this.loop.busy) this.loop.armBy(this.clock.now() + PRUNE_EVERY_MS);
  }

  /** Prunes until nothing is left to delete (tests and benches call it to see the bound at once). */
  async runOnce(): Promise<number> {
    const { deleted } = await this.loop.batches(async () => ({
      deleted: await this.store.prune(this.queue, this.retention, this.clock.now(), PRUNE_BATCH),
    }));
    return deleted;
  }

  private round(): void {
    const now = this.clock.now();
    this.dirty = false;
    for (const [state, at] of this.ageDue) if (at <= now) this.ageDue.delete(state);
    void this.loop.run(
      () => this.runOnce(),
      (error) => this.report(error, `queue('${this.queue}'): pruning finished tasks failed`),
      () => {
        if (this.dirty) this.loop.armBy(this.clock.now() + PRUNE_EVERY_MS);
        let next = Number.POSITIVE_INFINITY;
        for (const at of this.ageDue.values()) next = Math.min(next, at);
        if (Number.isFinite(next)) this.loop.armBy(next);
      },
    );
  }
}
