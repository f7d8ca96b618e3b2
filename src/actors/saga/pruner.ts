import type { Clock } from '../../core/clock.js';
import { PRUNE_BATCH, PruneLoop } from '../../core/pruneLoop.js';
import type { SagaStore } from '../../stores/sagaStore.js';
import { FINISHED_STATUSES, type ResolvedRetention } from './retention.js';

export { PRUNE_BATCH } from '../../core/pruneLoop.js';

/** The longest time between two passes; shorter when an `ageMs` is shorter (half of it, at least 1 s). */
const MAX_PRUNE_EVERY_MS = 60_000;
const MIN_PRUNE_EVERY_MS = 1_000;

/** What the pruner needs: the store, the runtime clock (time is passed to the store), where to report failures. */
export interface PrunerHost {
  store: SagaStore;
  clock: Clock;
  report(error: unknown, context: string): void;
}

/**
 * Deletes the finished runs of one saga name that its retention no longer
 * keeps: a pass every `MAX_PRUNE_EVERY_MS` (sooner for a short `ageMs`), and
 * one as soon as `PRUNE_BATCH` runs finished here since the last, so a busy
 * saga stays bounded between timer passes. Each pass deletes in batches of
 * `PRUNE_BATCH`, yielding to the event loop between them; on Postgres, a pass
 * that finds another process pruning (`busy`) stops and leaves it to that one.
 */
export class SagaPruner {
  private readonly loop: PruneLoop;
  private finishedSince = 0;
  /** Passes that ran to the end (tests and the viewer may read it). */
  passes = 0;

  constructor(
    private readonly host: PrunerHost,
    private readonly saga: string,
    private readonly retention: ResolvedRetention,
  ) {
    this.loop = new PruneLoop(host.clock, () => void this.runPass());
  }

  /** Runs a first pass now (records left by earlier runs), then on the timer. */
  start(): void {
    this.loop.start();
    this.runPass();
  }

  /** A run of this saga finished here: enough of them start a pass before the timer. */
  noteFinished(): void {
    if (++this.finishedSince >= PRUNE_BATCH) this.runPass();
  }

  /** Stops the timer and waits for the pass in progress (it ends after its current batch). */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Starts a pass unless one runs (it then covers what finished meanwhile). */
  runPass(): Promise<void> {
    if (this.loop.stopped) return Promise.resolve();
    if (!this.loop.busy) {
      this.finishedSince = 0;
      this.loop.clearTimer();
    }
    return this.loop.run(
      () => this.prune(),
      (error) => this.host.report(error, `saga '${this.saga}': pruning finished runs failed; retrying later`),
      () => this.loop.armBy(this.host.clock.now() + this.everyMs()),
    );
  }

  private everyMs(): number {
    const shortest = Math.min(...FINISHED_STATUSES.map((s) => this.retention[s].ageMs));
    return Math.max(MIN_PRUNE_EVERY_MS, Math.min(MAX_PRUNE_EVERY_MS, shortest / 2));
  }

  private async prune(): Promise<void> {
    const now = this.host.clock.now();
    for (const status of FINISHED_STATUSES) {
      const { count, ageMs } = this.retention[status];
      if (count === Number.POSITIVE_INFINITY && ageMs === Number.POSITIVE_INFINITY) continue;
      if (this.loop.stopped) return;
      const { busy } = await this.loop.batches(async () => {
        const { deleted, busy } = await this.host.store.pruneSagas(this.saga, {
          status,
          keep: Number.isFinite(count) ? count : undefined,
          before: Number.isFinite(ageMs) ? now - ageMs : undefined,
          limit: PRUNE_BATCH,
        });
        return { deleted, busy };
      });
      if (busy || this.loop.stopped) return;
    }
    this.passes++;
  }
}
