import type { AnyActorRef } from 'xstate';

/** Resolves with the first snapshot of `actor` (now or later) for which `done` returns true. */
export function untilSnapshot<T>(actor: AnyActorRef, done: (snapshot: T) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const now = actor.getSnapshot() as T;
    if (done(now)) {
      resolve(now);
      return;
    }
    let finished = false;
    const sub = actor.subscribe({
      next: (snapshot: T) => {
        if (finished || !done(snapshot)) return;
        finished = true;
        queueMicrotask(() => sub.unsubscribe());
        resolve(snapshot);
      },
      error: () => {
        if (finished) return;
        finished = true;
        resolve(actor.getSnapshot() as T);
      },
    });
  });
}
