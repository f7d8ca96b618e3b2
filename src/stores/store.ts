/**
 * What the runtime needs from a store. Every store (memory, sqlite, postgres)
 * implements it and passes the same contract suite in `test/stores/`.
 */
export interface Store {
  /** `memory`, `sqlite`, `postgres`, or a user's own. */
  readonly kind: string;
  /** Connects and migrates; throws `KeelError` `STORE_UNAVAILABLE` when it cannot. */
  open(): Promise<void>;
  /** Releases every handle the store holds; safe to call twice. */
  close(): Promise<void>;
}
