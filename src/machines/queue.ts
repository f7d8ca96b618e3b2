import { assign, enqueueActions, fromCallback, fromPromise, setup } from 'xstate';

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
  | { type: 'queue.resume' };

/**
 * One queue's actor: idle until the runtime has opened the store, then
 * running (working or paused; pausing while idle makes it start paused) with one spawned worker actor per unit of
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
          on: { 'queue.pause': { target: 'paused' } },
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
