import type { AnyActorLogic } from 'xstate';
import { assign, enqueueActions, fromPromise, setup, spawnChild } from 'xstate';
import { busMachine } from './bus.js';

/** Events of the runtime lifecycle. */
export type RuntimeEvent =
  | { type: 'runtime.start' }
  | { type: 'runtime.stop' }
  | { type: 'runtime.spawn'; logic: AnyActorLogic; id: string; systemId?: string; input?: unknown }
  | { type: 'xstate.error.actor.*'; error: unknown };

export interface RuntimeContext {
  /** Why the last start failed, while idle again. */
  startError: unknown;
  /** Why shutdown failed, once stopped. */
  stopError: unknown;
}

/**
 * The runtime's own lifecycle: idle → starting → running → stopping → stopped.
 * Opening the store and shutting down are invoked actors the runtime provides;
 * every pattern actor is spawned as a child of this machine, so they share one
 * actor system and the inspector shows them all.
 */
export const runtimeMachine = setup({
  types: { context: {} as RuntimeContext, events: {} as RuntimeEvent },
  actors: {
    bus: busMachine,
    startup: fromPromise<void>(async () => {}),
    shutdown: fromPromise<void>(async () => {}),
  },
  actions: {
    reportActorFailure: () => {},
    spawnActor: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'runtime.spawn') return;
      // XState's types forbid an id with inline logic; keel needs both so children are findable by name.
      const spawn = enqueue.spawnChild as unknown as (src: AnyActorLogic, options: object) => void;
      spawn(event.logic, { id: event.id, systemId: event.systemId, input: event.input });
    }),
  },
}).createMachine({
  id: 'runtime',
  context: { startError: undefined, stopError: undefined },
  initial: 'idle',
  entry: spawnChild('bus', { id: 'bus', systemId: 'bus' }),
  on: {
    'runtime.spawn': { actions: 'spawnActor' },
    'xstate.error.actor.*': { actions: 'reportActorFailure' },
  },
  states: {
    idle: {
      on: {
        'runtime.start': { target: 'starting', actions: assign({ startError: undefined }) },
        'runtime.stop': { target: 'stopping' },
      },
    },
    starting: {
      invoke: {
        id: 'startup',
        src: 'startup',
        onDone: { target: 'running' },
        onError: { target: 'idle', actions: assign({ startError: ({ event }) => event.error }) },
      },
      on: { 'runtime.stop': { target: 'stopping' } },
    },
    running: {
      on: { 'runtime.stop': { target: 'stopping' } },
    },
    stopping: {
      invoke: {
        id: 'shutdown',
        src: 'shutdown',
        onDone: { target: 'stopped' },
        onError: { target: 'stopped', actions: assign({ stopError: ({ event }) => event.error }) },
      },
    },
    stopped: { type: 'final' },
  },
});
