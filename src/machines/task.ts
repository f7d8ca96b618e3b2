import { assign, setup } from 'xstate';

export type { TaskState } from '../core/states.js';

/** What the lifecycle of one task needs to decide its next state. */
export interface TaskContext {
  /** Attempts spent; a claim spends one, a release or a breaker deferral gives it back. */
  attempt: number;
  /** `Infinity` for unlimited. */
  maxAttempts: number;
  /** The wait chosen for the current retry: a backoff, or a breaker's retry time (jitter is the queue's business, not the machine's). */
  delayMs: number;
}

/** Everything that can happen to a task. */
export type TaskEvent =
  /** A worker took it (it was due). */
  | { type: 'claim' }
  /** The handler resolved. */
  | { type: 'succeed' }
  /** The handler threw; `delayMs` is the backoff before the next attempt. */
  | { type: 'fail'; delayMs: number }
  /** The handler threw a `NonRetryableError`, or the payload cannot be read. */
  | { type: 'reject' }
  /**
   * The queue's breaker is open: wait `delayMs` (its retry time; default 0)
   * without spending the attempt, as a retrying task, so the task keeps its group's slot.
   */
  | { type: 'defer'; delayMs?: number }
  /** The runtime is stopping: back to pending, the attempt is not spent. */
  | { type: 'release' }
  /** The worker vanished (its lease ran out): handed out again, or dead when it used its attempts. */
  | { type: 'leaseExpired' }
  /** An operator put a dead task back. */
  | { type: 'redrive' }
  /** `queue.cancel(id)`: a waiting task never runs; a running one's signal aborts. */
  | { type: 'cancel' };

/**
 * The task lifecycle: `pending → active → succeeded`, `active → retrying →
 * pending` (a failure's backoff, or a breaker deferral that gives the attempt
 * back), `active → dead`, plus lease expiry, release, redrive and
 * cancel (`pending | active | retrying → cancelled`, final: never retried, not dead).
 *
 * There is no actor per task: a queue runs tens of thousands of tasks per
 * second and an actor send costs about 2 µs. Instead this pure definition is
 * the rule book: the queue asks it (through `src/actors/queue/lifecycle.ts`)
 * where each outcome leads, the stores implement exactly those transitions,
 * and the model-based tests generate paths from it and replay them against the
 * real queue.
 */
export const taskMachine = setup({
  types: {
    context: {} as TaskContext,
    events: {} as TaskEvent,
    input: {} as { maxAttempts?: number; attempt?: number },
  },
  guards: {
    // The only guard: decisions depend on nothing but `attempt < maxAttempts`.
    hasAttemptsLeft: ({ context }) => context.attempt < context.maxAttempts,
  },
  actions: {
    spendAttempt: assign({ attempt: ({ context }) => context.attempt + 1 }),
    refundAttempt: assign({ attempt: ({ context }) => Math.max(0, context.attempt - 1) }),
    scheduleRetry: assign({
      delayMs: ({ event }) => (event.type === 'fail' || event.type === 'defer' ? (event.delayMs ?? 0) : 0),
    }),
    resetAttempts: assign({ attempt: 0 }),
  },
  delays: {
    backoff: ({ context }) => context.delayMs,
  },
}).createMachine({
  id: 'task',
  initial: 'pending',
  context: ({ input }) => ({
    attempt: input?.attempt ?? 0,
    maxAttempts: input?.maxAttempts ?? Number.POSITIVE_INFINITY,
    delayMs: 0,
  }),
  states: {
    pending: {
      on: { claim: { target: 'active', actions: 'spendAttempt' }, cancel: { target: 'cancelled' } },
    },
    active: {
      on: {
        succeed: { target: 'succeeded' },
        fail: [{ guard: 'hasAttemptsLeft', target: 'retrying', actions: 'scheduleRetry' }, { target: 'dead' }],
        reject: { target: 'dead' },
        // Waits like a backoff (not back to pending): a waiting retry holds its group's slot, so with
        // groupConcurrency 1 a later task of the group cannot overtake it in another process.
        defer: { target: 'retrying', actions: ['refundAttempt', 'scheduleRetry'] },
        release: { target: 'pending', actions: 'refundAttempt' },
        leaseExpired: [{ guard: 'hasAttemptsLeft', target: 'pending' }, { target: 'dead' }],
        cancel: { target: 'cancelled' },
      },
    },
    retrying: {
      after: { backoff: { target: 'pending' } },
      on: { cancel: { target: 'cancelled' } },
    },
    succeeded: { type: 'final' },
    cancelled: { type: 'final' },
    dead: {
      on: { redrive: { target: 'pending', actions: 'resetAttempts' } },
    },
  },
});
