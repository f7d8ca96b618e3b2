import type { TaskState } from '../core/states.js';
import type { SagaStore } from './sagaStore.js';

/**
 * What the runtime needs from a store. Every store (memory, sqlite, postgres)
 * implements it and passes the same contract suite in `test/stores/`.
 *
 * Rules every method follows, so that a distributed store (postgres) and saga
 * persistence fit the same shape later:
 * - Every method is async, even where a store could answer synchronously.
 * - Time is passed in (`now`, `runAt`, `leaseUntil`, all epoch ms from the
 *   runtime's clock); a store never reads a clock, so a simulated clock drives
 *   delays and leases in tests.
 * - Methods take batches where the hot path needs them (enqueue, claim, renew,
 *   settle): one call is one transaction.
 * - A claimed task carries a lease token; renew and settle only act on a task
 *   whose token still matches, so a worker that lost its lease cannot finish a
 *   task someone else now holds.
 */
export interface Store extends TaskStore, SagaStore {
  /** `memory`, `sqlite`, `postgres`, or a user's own. */
  readonly kind: string;
  /** Connects and migrates; throws `KeelError` `STORE_UNAVAILABLE` when it cannot. */
  open(): Promise<void>;
  /** Releases every handle the store holds; safe to call twice. */
  close(): Promise<void>;
}

export type { TaskState } from '../core/states.js';

/** One task to add. The payload is already JSON text (the queue validated it). */
export interface NewTask {
  payload: string;
  key?: string;
  /** Not claimable before this time. */
  runAt: number;
}

/** What `enqueue` says about each new task, in request order. */
export interface EnqueueResult {
  id: string;
  /** A live (pending, active or retrying) task with the same key existed; `id` is that task's. */
  deduplicated: boolean;
}

/** A task handed to a worker. */
export interface ClaimedTask {
  id: string;
  payload: string;
  /** 1 on the first run; counts lease expiries too (the handler may have run). */
  attempt: number;
  key?: string;
  /** When it fell due (enqueue, delay or backoff end): the queue's wait-time metric starts here. */
  runAt?: number;
  /** Proves the claim in `renew` and `settle`. */
  token: string;
}

/** How a claimed task ended; `settle` applies it only while the lease token matches. */
export type Outcome =
  | { kind: 'succeeded'; id: string; token: string }
  | { kind: 'retrying'; id: string; token: string; runAt: number; error: string }
  | { kind: 'dead'; id: string; token: string; error: string }
  /** Back to pending without spending the attempt (runtime stopping, breaker open). */
  | { kind: 'released'; id: string; token: string; runAt: number };

/** A task as stored, for inspection (`dead()`, `get`). */
export interface TaskRecord {
  id: string;
  queue: string;
  /** The state at `now`: a retrying task whose backoff has passed reads as pending. */
  state: Exclude<TaskState, 'succeeded'>;
  payload: string;
  key?: string;
  attempt: number;
  runAt: number;
  leaseUntil?: number;
  lastError?: string;
  createdAt: number;
  updatedAt: number;
}

/** A stored task's state as a `TaskRecord` reads it at `now`: a retrying task whose backoff has passed is pending. */
export function stateAt(state: TaskRecord['state'], runAt: number, now: number): TaskRecord['state'] {
  return state === 'retrying' && runAt <= now ? 'pending' : state;
}

/** Counts per state. `retrying` counts tasks still waiting out a backoff. */
export interface QueueStats {
  pending: number;
  active: number;
  retrying: number;
  succeeded: number;
  dead: number;
}

/** What happened to a task whose lease ran out. */
export interface ExpiredLease {
  id: string;
  state: 'pending' | 'dead';
}

/** The task-queue half of a store. */
export interface TaskStore {
  /** Adds tasks in one transaction; a task whose key is live is not added again. */
  enqueue(queue: string, tasks: readonly NewTask[], now: number): Promise<EnqueueResult[]>;
  /**
   * Takes up to `limit` due tasks (pending, or retrying past their backoff),
   * oldest `runAt` first, marks them active with `token` until `leaseUntil`
   * and counts an attempt.
   */
  claim(
    queue: string,
    request: { limit: number; now: number; leaseUntil: number; token: string },
  ): Promise<ClaimedTask[]>;
  /** Extends the leases still held; returns the ids whose lease was lost. */
  renew(
    queue: string,
    leases: readonly { id: string; token: string }[],
    leaseUntil: number,
    now: number,
  ): Promise<string[]>;
  /** Applies outcomes in one transaction; `true` where the lease still matched. */
  settle(queue: string, outcomes: readonly Outcome[], now: number): Promise<boolean[]>;
  /**
   * Ends the leases that ran out before `now`: the task becomes pending again,
   * or dead when it has used `maxAttempts` (the task machine's `leaseExpired`).
   */
  expireLeases(queue: string, now: number, maxAttempts: number): Promise<ExpiredLease[]>;
  /** The earliest time something may change without a new enqueue: a task falls due or a lease runs out. */
  nextDueAt(queue: string): Promise<number | undefined>;
  stats(queue: string, now: number): Promise<QueueStats>;
  /** Dead tasks, oldest first. */
  dead(queue: string, limit?: number): Promise<TaskRecord[]>;
  /**
   * Puts a dead task back to pending with its attempts reset. `deduplicated`
   * when a live task holds the same key (the dead one stays dead).
   */
  redrive(queue: string, id: string, now: number): Promise<'redriven' | 'deduplicated' | 'not-found'>;
  /** One task, or undefined when it is unknown or has succeeded (succeeded tasks are not kept). */
  get(queue: string, id: string, now: number): Promise<TaskRecord | undefined>;
}

// Capabilities: what some stores can do beyond the contract. The runtime asks
// with the type guards below instead of probing optional methods.

/** A store shared by several processes that can say when work may have appeared on a queue. */
export interface Watchable {
  /**
   * Calls `onWake` when work may have appeared on `queue` that this process
   * did not enqueue (another process, a committed transaction). A hint only:
   * wake-ups can be lost, so the queue keeps polling. Returns the function
   * that stops watching.
   */
  watch(queue: string, onWake: () => void): () => void;
}

/** A store that can write tasks inside the caller's own open transaction (the outbox pattern). */
export interface Transactional {
  /**
   * Enqueues inside the caller's open transaction `tx` (for Postgres, a `pg`
   * client after `BEGIN`), so the tasks commit or roll back with the caller's
   * own writes.
   */
  enqueueWith(tx: unknown, queue: string, tasks: readonly NewTask[], now: number): Promise<EnqueueResult[]>;
}

/** The part of the runtime's bus a bridge uses. */
export interface BridgedBus {
  publish(topic: string, payload: unknown, options?: { source?: string }): number;
  subscribe(topic: string, handler: (payload: any, event: { type: string; source?: string }) => unknown): () => void;
}

/** A store that connects the runtime's bus to other runtimes sharing it. */
export interface BusBridge {
  /**
   * Called after `open`; resolves to the function that disconnects (flushing
   * what is still to be sent), called before `close`.
   */
  bridgeBus(bus: BridgedBus, report: (error: unknown, detail: string) => void): Promise<() => Promise<void>>;
}

/** True when `store` can watch queues for work written elsewhere. */
export function isWatchable(store: Store): store is Store & Watchable {
  return typeof (store as Partial<Watchable>).watch === 'function';
}

/** True when `store` can enqueue inside a caller's transaction. */
export function isTransactional(store: Store): store is Store & Transactional {
  return typeof (store as Partial<Transactional>).enqueueWith === 'function';
}

/** True when `store` bridges the bus to other runtimes. */
export function isBusBridge(store: Store): store is Store & BusBridge {
  return typeof (store as Partial<BusBridge>).bridgeBus === 'function';
}

/**
 * One fleet breaker's shared state (issue #18), as `FleetBreakers` keeps it.
 * `period` grows at every open and every close, so an outcome or a trial
 * claim of an earlier period can be told apart and dropped.
 */
export interface FleetBreakerRow {
  period: number;
  state: 'closed' | 'open';
  /** Epoch ms (the writer's clock) when the open period began, and its length. */
  openedAt: number;
  openMs: number;
  /** The fleet's closed-state counts: consecutive failures and the rate window (machine encoding). */
  failures: number;
  window: string;
  /** Lease ends of the trial calls claimed in this open period and still running. */
  trials: number[];
  /** Successful trials in this open period. */
  successes: number;
}

/** A store that keeps breaker state shared by every process on it (`scope: 'fleet'`). */
export interface FleetBreakers {
  /**
   * Reads the row of breaker `name` under a lock, lets `change` (a pure
   * function; `undefined` when the row does not exist yet) return the next row
   * or `undefined` to leave it, writes it, and resolves to the row as it now
   * is. When the write is news (`breakerNews`), the other processes are told (`watchBreakers`).
   */
  updateBreaker(
    name: string,
    change: (row: FleetBreakerRow | undefined) => FleetBreakerRow | undefined,
  ): Promise<FleetBreakerRow | undefined>;
  /** The row of breaker `name`, read without a lock. */
  readBreaker(name: string): Promise<FleetBreakerRow | undefined>;
  /**
   * Calls `onChange(name)` when another process moved a breaker's period;
   * `onChange(null)` when notifications stopped (poll meanwhile) and
   * `onChange(undefined)` when they resumed (what was sent meanwhile is
   * unknown). Returns the function that stops watching.
   */
  watchBreakers(onChange: (name: string | null | undefined) => void): () => void;
}

/**
 * What other processes must hear of: the period moved (opened, closed), or the
 * fleet's consecutive count started or ended (a process then knows whether its
 * own closed-state successes can change the count, and sends them only then).
 */
export function breakerNews(before: FleetBreakerRow | undefined, after: FleetBreakerRow): boolean {
  return after.period !== (before?.period ?? 0) || (after.failures === 0) !== ((before?.failures ?? 0) === 0);
}

/** True when `store` can share breaker state between processes. */
export function isFleetBreakers(store: Store): store is Store & FleetBreakers {
  return typeof (store as Partial<FleetBreakers>).updateBreaker === 'function';
}
