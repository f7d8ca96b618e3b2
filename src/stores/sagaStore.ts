import type { SagaRecordStatus } from '../core/states.js';

export type { SagaRecordStatus } from '../core/states.js';

/** A saga's progress as stored at every step boundary. */
export interface SagaRecord {
  saga: string;
  id: string;
  /** The definition's shape (step names, which can be undone); a resume into a changed definition is refused. */
  version: string;
  status: SagaRecordStatus;
  /** The machine state value, as JSON. */
  state: string;
  /** The machine context (input, results, errors, compensated steps), as JSON. */
  context: string;
  /** The attempt of the step in progress (1-based). */
  attempt: number;
  /** When the next attempt of that step may start: a backoff deadline kept as data, so a restart honours it. */
  notBefore: number | undefined;
  createdAt: number;
  updatedAt: number;
  /** The trace context of the `execute` that started it (W3C carrier as JSON): a resumed saga's spans keep that parent. */
  trace?: string;
  /**
   * Every state the saga went through, as a JSON array of `SagaHistoryEntry`;
   * written with the checkpoint in the same save. Absent on records written before it was kept.
   */
  history?: string | undefined;
  /**
   * The attempts of the parallel branches in flight (`{ [step]: { attempt, notBefore } }`, JSON),
   * so a crash during a branch's retries resumes its attempt count and backoff. Absent when none.
   */
  branches?: string | undefined;
}

/** One state a saga went through (see `saga.get`). */
export interface SagaHistoryEntry {
  /** The machine state as a dotted path (`running.createOrder`, `compensating.createOrder`, `completed`). */
  state: string;
  /** When the saga reached it (runtime clock, epoch ms). */
  at: number;
  /** The attempt of the step in that state (1-based); absent in final states. */
  attempt?: number;
  /** The error that led here: a failed attempt before a retry, a failed step before compensating, how it ended. */
  error?: unknown;
}

/** Which records `listSagas` returns: newest first (`createdAt`, then `id`, descending) unless `order` is `oldest`. */
export interface SagaListQuery {
  status?: SagaRecordStatus | undefined;
  limit: number;
  /** Only records strictly past this position in the page's order (the last record of the previous page). */
  after?: { createdAt: number; id: string } | undefined;
  /** `newest` (default) or `oldest` first. */
  order?: SagaOrder | undefined;
}

/** The order of a saga list: by `createdAt`, then `id`. */
export type SagaOrder = 'newest' | 'oldest';

/** Which finished records of one status `pruneSagas` deletes. */
export interface SagaPruneRule {
  status: SagaRecordStatus;
  /** Keep the newest `keep` (by `updatedAt`, the time it finished); undefined keeps any number. */
  keep: number | undefined;
  /** Delete those that finished before this time; undefined deletes none for age. */
  before: number | undefined;
  /** Delete at most this many in this call (small batches never hold the store for long). */
  limit: number;
}

/**
 * A message kept for one saga until it ends: a signal (`saga.signal`) or a
 * cancel request (named `CANCEL_SIGNAL`). Kept as data, so one sent before the
 * saga waits for it, or while its runtime restarts, is not lost.
 */
export interface SagaSignal {
  saga: string;
  id: string;
  /** Increases with each signal the store keeps: the order they were sent in. */
  seq: number;
  name: string;
  /** The payload, as JSON. */
  payload: string;
  at: number;
}

/** The name a cancel request is kept under among a saga's signals (no waitFor name can start with `$`). */
export const CANCEL_SIGNAL = '$cancel';

/** The saga half of a store. */
export interface SagaStore {
  /** Inserts or replaces the record of (`saga`, `id`); a finished record drops the saga's kept signals. */
  saveSaga(record: SagaRecord): Promise<void>;
  loadSaga(saga: string, id: string): Promise<SagaRecord | undefined>;
  /** Every record of `saga` that is still running or compensating, oldest first. */
  unfinishedSagas(saga: string): Promise<SagaRecord[]>;
  /** Keeps a signal for the saga (`saga`, `id`) until it ends. */
  sendSagaSignal(signal: Omit<SagaSignal, 'seq'>): Promise<void>;
  /** The signals kept for the sagas `ids` of `saga`, in the order they were sent. */
  sagaSignals(saga: string, ids: readonly string[]): Promise<SagaSignal[]>;
  /** One page of the records of `saga`, newest first (or oldest, as asked), by an index (keyset pagination, no OFFSET). */
  listSagas(saga: string, query: SagaListQuery): Promise<SagaRecord[]>;
  /**
   * Deletes finished records of `saga` that `rule` does not keep (at most `rule.limit`).
   * `busy` when another process prunes this store right now (nothing was deleted; try later).
   */
  pruneSagas(saga: string, rule: SagaPruneRule): Promise<{ deleted: number; busy: boolean }>;
}

/**
 * A capability of stores shared by several runtimes (postgres): each saga is
 * owned by one runtime at a time. Without it, every runtime resumes every
 * unfinished saga.
 */
export interface SharedSagas {
  /**
   * A saga is owned by the runtime that saves it, for `sagaLeaseMs` past each
   * save or renewal.
   */
  readonly sagaLeaseMs: number;
  /**
   * Takes the unfinished sagas of `saga` (only `id`, when given) that no live
   * runtime owns: never owned, owned by this store, or whose owner let its
   * lease pass `now`. They are this store's until `now + sagaLeaseMs`. Oldest first.
   * With `versions`, only sagas started on one of them (a runtime adopts what it can run).
   */
  adoptSagas(saga: string, now: number, id?: string, versions?: readonly string[]): Promise<SagaRecord[]>;
  /** Extends this store's hold on sagas `ids` to `now + sagaLeaseMs`; returns the ids it no longer holds. */
  renewSagas(saga: string, ids: readonly string[], now: number): Promise<string[]>;
  /** Gives up this store's hold on sagas `ids` (a graceful stop): any runtime may adopt them at once. */
  releaseSagas(saga: string, ids: readonly string[]): Promise<void>;
}

/** True when `store` shares sagas between runtimes (ownership by lease). */
export function hasSharedSagas<S extends SagaStore>(store: S): store is S & SharedSagas {
  return typeof (store as Partial<SharedSagas>).adoptSagas === 'function';
}

/**
 * A capability of stores shared by processes (postgres): hears of signals
 * other processes keep for sagas, so a waiting saga wakes at once instead of
 * at its next poll. A hint only: notifications can be lost, so sagas keep polling.
 */
export interface WatchedSagaSignals {
  /**
   * Calls `onSignal(saga, id)` when a signal was kept for that saga;
   * `onSignal(null)` when notifications stopped and `onSignal(undefined)` when
   * they resumed (what was sent meanwhile is unknown). Returns the function
   * that stops watching.
   */
  watchSagaSignals(onSignal: (saga: string | null | undefined, id?: string) => void): () => void;
}

/** True when `store` can tell of signals kept by other processes. */
export function hasSignalWatch<S extends SagaStore>(store: S): store is S & WatchedSagaSignals {
  return typeof (store as Partial<WatchedSagaSignals>).watchSagaSignals === 'function';
}
