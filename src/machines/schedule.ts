import { assign, fromPromise, type SnapshotFrom, setup } from 'xstate';

/*
 * Contract between the schedule machine and its effects (`src/actors/schedule/`).
 *
 * The machine owns the schedule's mode: idle (the store is not open yet),
 * waiting for the next slot, firing (the store moves the slot and enqueues its
 * task in one transaction), and the finals removed and stopped. The deadline
 * is data: the store keeps the last slot handled, and every wake-up computes
 * what is due from it, so a lost timer (a restart) loses no slot. The effects
 * hand the machine the next wake-up (`nextAt`, `delayMs`) and never keep a copy
 * of the mode.
 */

/** What the schedule actor is created with. */
export interface ScheduleInput {
  name: string;
  /** How long to wait before trying again after a failed fire (a store error). */
  retryMs: number;
}

/** Where the effects say the schedule goes next. */
export interface ScheduleWake {
  /** Epoch ms of the next slot. */
  nextAt: number;
  /** How long to sleep before looking again (at most until `nextAt`; long waits are cut in pieces). */
  delayMs: number;
}

/** What one fire ends with: the next wake-up, or `gone` when the schedule was removed from the store. */
export type FireOutput = ({ gone: false } & ScheduleWake) | { gone: true };

export interface ScheduleContext extends ScheduleWake {
  name: string;
  retryMs: number;
}

/** Events the schedule actor takes. */
export type ScheduleEvent =
  /** The store is open and the schedule saved: sleep until the first wake-up. */
  | ({ type: 'schedule.start' } & ScheduleWake)
  /** The runtime stops (the stored schedule stays). */
  | { type: 'schedule.stop' }
  /** `schedule.remove()` (the stored schedule is deleted by the effects). */
  | { type: 'schedule.remove' };

/**
 * One schedule's actor: `idle → waiting ⇄ firing`, ending `removed` or
 * `stopped`. In `waiting` the `untilDue` delay runs on the runtime's clock;
 * `firing` invokes `fire`, which the effects provide.
 */
export const scheduleMachine = setup({
  types: {
    context: {} as ScheduleContext,
    events: {} as ScheduleEvent,
    input: {} as ScheduleInput,
  },
  actors: {
    /** Moves the stored slot and enqueues what is due, in one store transaction. */
    fire: fromPromise<FireOutput>(async () => ({ gone: false, nextAt: 0, delayMs: 0 })),
  },
  actions: {
    /** Takes the next wake-up from `schedule.start`. */
    arm: assign(({ event }) => {
      const e = event as ScheduleEvent & ScheduleWake;
      return { nextAt: e.nextAt, delayMs: e.delayMs };
    }),
    /** Takes the next wake-up from what `fire` returned. */
    armFromFire: assign(({ event }) => {
      const out = (event as unknown as { output: ScheduleWake }).output;
      return { nextAt: out.nextAt, delayMs: out.delayMs };
    }),
    /** A failed fire is tried again after `retryMs`; the slot stays due, so nothing is lost. */
    armRetry: assign(({ context }) => ({ delayMs: context.retryMs })),
    reportFailure: () => {},
  },
  guards: {
    removedFromStore: ({ event }) => (event as unknown as { output?: FireOutput }).output?.gone === true,
  },
  delays: {
    untilDue: ({ context }) => context.delayMs,
  },
}).createMachine({
  id: 'schedule',
  initial: 'idle',
  context: ({ input }) => ({ name: input.name, retryMs: input.retryMs, nextAt: 0, delayMs: 0 }),
  states: {
    idle: {
      // Not started, nothing stored by this runtime yet: it can only stop (remove() waits for the start).
      on: {
        'schedule.start': { target: 'waiting', actions: 'arm' },
        'schedule.stop': { target: 'stopped' },
      },
    },
    waiting: {
      after: { untilDue: { target: 'firing' } },
      on: {
        'schedule.stop': { target: 'stopped' },
        'schedule.remove': { target: 'removed' },
      },
    },
    firing: {
      on: {
        'schedule.stop': { target: 'stopped' },
        'schedule.remove': { target: 'removed' },
      },
      invoke: {
        id: 'fire',
        src: 'fire',
        onDone: [
          { guard: 'removedFromStore', target: 'removed' },
          { target: 'waiting', actions: 'armFromFire' },
        ],
        onError: { target: 'waiting', actions: ['armRetry', 'reportFailure'] },
      },
    },
    removed: { type: 'final' },
    stopped: { type: 'final' },
  },
});

/** A snapshot of the schedule actor. */
export type ScheduleSnapshot = SnapshotFrom<typeof scheduleMachine>;
