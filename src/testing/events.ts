import type { EventObject } from 'xstate';

/** What a model event stands for in the real system. */
export type EventKind =
  | { kind: 'after'; delay: string; stateId: string }
  | { kind: 'done'; actorId: string; output: unknown }
  | { kind: 'error'; actorId: string; error: unknown }
  | { kind: 'event'; type: string };

/**
 * Classifies a model event: `xstate.after.<delay>.<stateId>` is a clock advance,
 * `xstate.done.actor.<id>` / `xstate.error.actor.<id>` a fake service that
 * resolves / rejects, anything else an event the driver causes.
 */
export function eventKind(event: EventObject): EventKind {
  const { type } = event;
  if (type.startsWith('xstate.after.')) {
    const rest = type.slice('xstate.after.'.length);
    const dot = rest.indexOf('.');
    return { kind: 'after', delay: rest.slice(0, dot), stateId: rest.slice(dot + 1) };
  }
  if (type.startsWith('xstate.done.actor.')) {
    return {
      kind: 'done',
      actorId: type.slice('xstate.done.actor.'.length),
      output: (event as { output?: unknown }).output,
    };
  }
  if (type.startsWith('xstate.error.actor.')) {
    return {
      kind: 'error',
      actorId: type.slice('xstate.error.actor.'.length),
      error: (event as { error?: unknown }).error,
    };
  }
  return { kind: 'event', type };
}
