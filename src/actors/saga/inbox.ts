/**
 * Signals and cancels reach a saga as data in the store (`sendSagaSignal`);
 * this only rings the runtimes of this process that share the store, so
 * they look now instead of at their next poll. A ring may be missed (a runtime
 * that started later, another process): the stored signal is what counts.
 */
type Ring = (saga: string, id: string) => void;

const bells = new WeakMap<object, Set<Ring>>();

/** Calls `ring` when a signal for a saga is kept in `store` from this process, until the returned function is called. */
export function listenForSignals(store: object, ring: Ring): () => void {
  let set = bells.get(store);
  if (!set) bells.set(store, (set = new Set()));
  set.add(ring);
  return () => set.delete(ring);
}

/** Tells this process's runtimes on `store` that the saga (`saga`, `id`) has a new signal. */
export function ringSignal(store: object, saga: string, id: string): void {
  for (const ring of bells.get(store) ?? []) ring(saga, id);
}

/** A one-shot wake-up many waiters share: `wait()` resolves at the next `ring()`. */
export class Bell {
  private waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  ring(): void {
    const due = this.waiters;
    this.waiters = [];
    for (const resolve of due) resolve();
  }
}
