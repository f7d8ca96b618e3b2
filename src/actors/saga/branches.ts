import { KeelError } from '../../core/errors.js';
import type { SagaStepEvent } from '../../machines/saga.js';

interface Branch {
  /** Settles when the branch has an outcome; rejects only when the store or the saga's interruption stops it. */
  done: Promise<void>;
  controller: AbortController;
  outcome: SagaStepEvent | undefined;
}

/**
 * The branches of one parallel group in flight, by invoke id. Each runs
 * under its own signal (aborted with the saga's, or alone when its state is
 * left because another branch failed). A branch that settled keeps its
 * outcome until the machine takes it, so two branches settling in one tick
 * lose nothing.
 */
export class BranchSet {
  private readonly branches = new Map<string, Branch>();

  constructor(private readonly saga: string) {}

  get size(): number {
    return this.branches.size;
  }

  /** Starts the branch `id`: `run` performs it under the signal it is given and resolves with its outcome. */
  start(id: string, signal: AbortSignal, run: (signal: AbortSignal) => Promise<SagaStepEvent>): void {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
    const branch: Branch = { done: Promise.resolve(), controller, outcome: undefined };
    branch.done = run(controller.signal).then((event) => {
      branch.outcome = event;
    });
    branch.done.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {});
    this.branches.set(id, branch);
  }

  /**
   * Waits for a branch to settle and returns the outcome for the machine to
   * take next. Completions go first: a failure taken first would leave the
   * group and drop their completion, and their effect would not be undone.
   */
  async next(): Promise<SagaStepEvent> {
    await Promise.race([...this.branches.values()].map((b) => b.done));
    let pick: [string, SagaStepEvent] | undefined;
    for (const [id, b] of this.branches) {
      if (!b.outcome) continue;
      if (b.outcome.type.startsWith('xstate.done.')) {
        pick = [id, b.outcome];
        break;
      }
      pick ??= [id, b.outcome];
    }
    if (!pick) throw new Error(`saga '${this.saga}': a parallel branch settled without an outcome`);
    this.branches.delete(pick[0]);
    return pick[1];
  }

  /** Aborts the branch `id` if it still runs (its state was left); `failed` names the step that failed, if one did. */
  stop(id: string, failed: string | undefined): void {
    const branch = this.branches.get(id);
    if (!branch) return;
    this.branches.delete(id);
    branch.controller.abort(
      new KeelError(
        'CANCELLED',
        `saga '${this.saga}' parallel step '${id.slice('run.'.length)}' was aborted: ${failed === undefined ? 'the saga stopped' : `'${failed}' failed`}`,
      ),
    );
  }

  /** Aborts every branch still running (the saga stopped). */
  stopAll(): void {
    for (const id of [...this.branches.keys()]) this.stop(id, undefined);
  }
}
