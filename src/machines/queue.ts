import { assign, enqueueActions, fromCallback, fromPromise, type SnapshotFrom, setup } from 'xstate';

/*
 * Contract between the queue machine and its effects (`src/actors/queue/`).
 *
 * The machine owns the queue's mode: idle, running (working, gated or paused),
 * stopping, aborting, stopped. Nothing else keeps a copy of it. The engine asks
 * the queue actor's snapshot (`getSnapshot()`, through the predicates below)
 * whenever it needs the mode: once per claim round, not per task.
 *
 * Entry and exit actions tell the engine that the mode changed so it can act
 * (start a claim round, release buffered tasks, arm or clear the gate's timer).
 * XState runs them before it commits the new snapshot, so an effect that reads
 * the mode defers that read until the transition is committed.
 *
 * The engine may keep what is not a mode: the tasks it holds, its buffer and
 * outbox, counters, and timers (wake-up, lease renewal, the gate's deadline,
 * which lives exactly as long as `running.gated`). It changes the mode only by
 * sending an event: `queue.gate` when the queue's breaker refused a task,
 * `queue.ungate` when that breaker's retry time is over.
 */

/** What the queue actor is created with. */
export interface QueueInput {
  /** Workers to spawn (0 for a queue that only enqueues). */
  concurrency: number;
  /** How long `stop` lets active handlers finish before it aborts them. */
  graceMs: number;
  /** Start in `running.paused` (claims nothing until `queue.resume`). */
  startPaused?: boolean;
}

export interface QueueContext {
  concurrency: number;
  graceMs: number;
  startPaused: boolean;
}

/** Events the queue actor takes. */
export type QueueEvent =
  | { type: 'queue.start' }
  | { type: 'queue.stop' }
  | { type: 'queue.pause' }
  | { type: 'queue.resume' }
  /** The queue's breaker refused a task: claim nothing for `retryAfterMs` (`Infinity`: until `queue.ungate`). */
  | { type: 'queue.gate'; retryAfterMs: number }
  /** The breaker admits calls again (its retry time is over, or it closed). */
  | { type: 'queue.ungate' };

/**
 * One queue's actor: idle until the runtime has opened the store, then
 * running (working, gated while its breaker refuses calls, or paused; pausing
 * while idle makes it start paused) with one spawned worker actor per unit of
 * concurrency, then a graceful stop: no new claims, active handlers get
 * `graceMs` to finish, after which they are aborted and their tasks released
 * back to pending. Effects (claims, handlers, store writes) are provided by
 * `src/actors/queue/queueActor.ts`; the defaults here do nothing.
 */
export const queueMachine = setup({
  types: {
    context: {} as QueueContext,
    events: {} as QueueEvent,
    input: {} as QueueInput,
  },
  actors: {
    worker: fromCallback<{ type: string }, { index: number }>(() => {}),
    /** Resolves once every active handler has settled and its outcome is stored. */
    finishActive: fromPromise<void>(async () => {}),
    /** Stores every still-active task as released (pending, attempt not spent). */
    releaseActive: fromPromise<void>(async () => {}),
  },
  actions: {
    /** Work the store holds from before (leases that ran out while nobody ran) becomes claimable. */
    recover: () => {},
    startClaims: () => {},
    pauseClaims: () => {},
    /** Arms the gate's deadline from the `queue.gate` that entered it: `queue.ungate` after its `retryAfterMs`. */
    closeGate: () => {},
    /** Clears the gate's deadline. */
    openGate: () => {},
    stopClaims: () => {},
    abortActive: () => {},
    reportFailure: () => {},
    spawnWorkers: enqueueActions(({ context, enqueue }) => {
      for (let index = 0; index < context.concurrency; index++) {
        enqueue.spawnChild('worker', { id: `worker-${index}`, input: { index } });
      }
    }),
  },
  guards: {
    startsPaused: ({ context }) => context.startPaused,
  },
  delays: {
    grace: ({ context }) => context.graceMs,
  },
}).createMachine({
  id: 'queue',
  initial: 'idle',
  context: ({ input }) => ({
    concurrency: input.concurrency,
    graceMs: input.graceMs,
    startPaused: input.startPaused ?? false,
  }),
  states: {
    idle: {
      on: {
        'queue.start': [{ guard: 'startsPaused', target: 'running.paused' }, { target: 'running' }],
        'queue.stop': { target: 'stopped' },
        // Before start, pause and resume only choose how the queue starts.
        'queue.pause': { actions: assign({ startPaused: true }) },
        'queue.resume': { actions: assign({ startPaused: false }) },
      },
    },
    running: {
      entry: ['recover', 'spawnWorkers'],
      initial: 'working',
      states: {
        working: {
          entry: 'startClaims',
          on: {
            'queue.pause': { target: 'paused' },
            'queue.gate': { target: 'gated' },
          },
        },
        gated: {
          entry: 'closeGate',
          exit: 'openGate',
          on: {
            // A later refusal brings a later retry time.
            'queue.gate': { target: 'gated', reenter: true },
            'queue.ungate': { target: 'working' },
            // Resuming goes back to working: a task the breaker still refuses closes the gate again.
            'queue.pause': { target: 'paused' },
          },
        },
        paused: {
          entry: 'pauseClaims',
          on: { 'queue.resume': { target: 'working' } },
        },
      },
      on: { 'queue.stop': { target: 'stopping' } },
    },
    stopping: {
      entry: 'stopClaims',
      invoke: { id: 'finishActive', src: 'finishActive', onDone: { target: 'stopped' } },
      after: { grace: { target: 'aborting' } },
    },
    aborting: {
      entry: 'abortActive',
      invoke: {
        id: 'releaseActive',
        src: 'releaseActive',
        onDone: { target: 'stopped' },
        onError: { target: 'stopped', actions: 'reportFailure' },
      },
    },
    stopped: { type: 'final' },
  },
});

/** A snapshot of the queue actor: where the engine reads the mode. */
export type QueueSnapshot = SnapshotFrom<typeof queueMachine>;

/** The queue may claim new tasks (`running.working`). */
export function claimsOpen(snapshot: QueueSnapshot): boolean {
  return snapshot.status === 'active' && snapshot.matches({ running: 'working' });
}

/** Claims wait for the queue's breaker (`running.gated`). */
export function isGated(snapshot: QueueSnapshot): boolean {
  return snapshot.status === 'active' && snapshot.matches({ running: 'gated' });
}

/** The queue is stopping or stopped: it takes no more work, and claimed-but-unstarted tasks go back. */
export function isEnding(snapshot: QueueSnapshot): boolean {
  return snapshot.status !== 'active' || snapshot.matches('stopping') || snapshot.matches('aborting');
}
