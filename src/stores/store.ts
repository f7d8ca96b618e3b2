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
  /** `onDuplicate: 'replace'`: a pending task holding `key` gets this payload instead (see `EnqueueResult.replaced`). */
  replace?: boolean;
  /** Not claimable before this time. */
  runAt: number;
  /** The enqueuer's trace context (W3C carrier as JSON), handed back unchanged with every claim of the task. */
  trace?: string;
  /** Lower runs first; default 0 (an integer, negative allowed). */
  priority?: number;
  /** The tenant/entity it belongs to: groups take turns and carry the group limits (`ClaimLimits`). */
  group?: string;
}

/** What `enqueue` says about each new task, in request order. */
export interface EnqueueResult {
  id: string;
  /** A live (pending, active or retrying) task with the same key existed; `id` is that task's. */
  deduplicated: boolean;
  /**
   * `replace` was asked and the task holding the key was pending (not started,
   * not waiting out a retry): its payload is now this one, `id` is that task's
   * and `deduplicated` is false. An active or retrying holder is not replaced
   * (the result is `deduplicated: true`, no `replaced`).
   */
  replaced?: boolean;
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
  /** `NewTask.trace` as enqueued: the attempt's span has the enqueuing span as its parent. */
  trace?: string;
  /** Only when not 0. */
  priority?: number;
  group?: string;
}

/** A start-rate limit: at most `max` claims in any `perMs` window. */
export interface RateLimit {
  max: number;
  perMs: number;
}

/**
 * The limits a claim enforces, fleet-wide (every process sharing the store),
 * inside the claim's own transaction. `active` counts tasks leased right now
 * (claimed, running or buffered); a group's count adds its tasks waiting out a
 * backoff, so `groupConcurrency: 1` keeps one entity's tasks in order through retries.
 */
export interface ClaimLimits {
  globalConcurrency?: number;
  rateLimit?: RateLimit;
  groupConcurrency?: number;
  groupRateLimit?: RateLimit;
}

/** What `claim` is asked. */
export interface ClaimRequest {
  limit: number;
  now: number;
  leaseUntil: number;
  token: string;
  /** Absent: no limits (the plain claim). */
  limits?: ClaimLimits;
  /**
   * Tasks this claimer leased whose handlers have returned, their outcomes on their way to `settle`: they run no
   * more, so they hold no slot of `limits.globalConcurrency` (matched by id and lease token: a task whose lease
   * passed to another holder still counts). A group still counts them: its next task must not start before the
   * outcome (perhaps a retry) is stored, or `groupConcurrency: 1` would lose its order.
   */
  finished?: readonly { id: string; token: string }[];
}

/** How a claimed task ended; `settle` applies it only while the lease token matches. */
export type Outcome =
  | {
      kind: 'succeeded';
      id: string;
      token: string;
      /** The handler's return value as JSON text (already size-limited by the queue); absent for none. */
      result?: string;
    }
  | { kind: 'retrying'; id: string; token: string; runAt: number; error: string }
  | { kind: 'dead'; id: string; token: string; error: string }
  /** Back to pending without spending the attempt (runtime stopping). */
  | { kind: 'released'; id: string; token: string; runAt: number }
  /**
   * The queue's breaker is open: retrying until `runAt` without spending the
   * attempt and keeping `lastError`; like a backoff, it holds its group's slot.
   */
  | { kind: 'deferred'; id: string; token: string; runAt: number };

/** A task as stored, for inspection (`dead()`, `get`, `list`): live, dead, or finished within retention. */
export interface TaskRecord {
  id: string;
  queue: string;
  /** The state at `now`: a retrying task whose backoff has passed reads as pending. */
  state: TaskState;
  payload: string;
  key?: string;
  /** Only when not 0. */
  priority?: number;
  group?: string;
  attempt: number;
  runAt: number;
  leaseUntil?: number;
  lastError?: string;
  /** succeeded: the handler's return value as JSON text (see `RESULT_LIMIT_BYTES`). */
  result?: string;
  /** The latest `task.progress(value)` as JSON text. */
  progress?: string;
  createdAt: number;
  updatedAt: number;
  /** When the first attempt was claimed. */
  startedAt?: number;
  /** succeeded, dead, cancelled: when it ended. */
  finishedAt?: number;
}

/** A stored task's state as a `TaskRecord` reads it at `now`: a retrying task whose backoff has passed is pending. */
export function stateAt(state: TaskRecord['state'], runAt: number, now: number): TaskRecord['state'] {
  return state === 'retrying' && runAt <= now ? 'pending' : state;
}

/** The states of a task that has ended (kept for a while by `Retention`). */
export type FinishedState = 'succeeded' | 'dead' | 'cancelled';

/** How many finished tasks of one state a queue keeps, and for how long. */
export interface KeepRule {
  /** The newest this many are kept (0: none). */
  count: number;
  /** This long after they finished (or longer) they are deleted whatever the count. */
  ageMs: number;
}

/** What a queue keeps of its finished tasks; the pruner deletes the rest. */
export type Retention = Record<FinishedState, KeepRule>;

/** A page of `list`: the filter, the page size and where the previous page ended. */
export interface TaskQuery {
  state?: TaskState;
  /** Tasks of this group only; a store without groups has none, so it matches nothing. */
  group?: string;
  key?: string;
  limit: number;
  /** The `next` of the previous page: tasks with a greater id (`oldest`) or a smaller one (`newest`). */
  after?: string;
  /** `oldest` (default): lowest id first; `newest`: highest id first, as a console lists them. */
  order?: TaskOrder;
}

/** The order of a `list` page: by id, the order tasks were enqueued in. */
export type TaskOrder = 'oldest' | 'newest';

/** One page of tasks in the query's order (oldest first by default); `next` is there when more may follow. */
export interface TaskPage {
  items: TaskRecord[];
  next?: string;
}

/** What `cancel` did: `finished` when the task had already ended (succeeded, dead or cancelled). */
export type CancelResult = 'cancelled' | 'not-found' | 'finished';

/** A progress value reported by the holder of a task's lease. */
export interface ProgressUpdate {
  id: string;
  token: string;
  /** JSON text. */
  progress: string;
}

/** Counts per state. `retrying` counts tasks still waiting out a backoff. */
export interface QueueStats {
  pending: number;
  active: number;
  retrying: number;
  succeeded: number;
  dead: number;
  /** Tasks cancelled (ever, like `succeeded`). */
  cancelled: number;
}

/** What happened to a task whose lease ran out. */
export interface ExpiredLease {
  id: string;
  state: 'pending' | 'dead';
}

/** The task-queue half of a store. */
export interface TaskStore {
  /**
   * Adds tasks in one transaction; a task whose key is live is not added
   * again, unless it asked to `replace` a pending holder (see `EnqueueResult`).
   */
  enqueue(queue: string, tasks: readonly NewTask[], now: number): Promise<EnqueueResult[]>;
  /**
   * Takes up to `limit` due tasks (pending, or retrying past their backoff),
   * marks them active with `token` until `leaseUntil` and counts an attempt.
   * Order: groups take turns, least recently served first (tasks without a
   * group take their turn as one more group); within a group, and among tasks
   * without one, lowest `priority` first, then oldest `runAt`, then id (in a
   * group: lowest priority, then id, so a retried task keeps its place).
   * `limits` are enforced in the same transaction: a task they hold back
   * stays pending.
   */
  claim(queue: string, request: ClaimRequest): Promise<ClaimedTask[]>;
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
  /** One task in any state, or undefined when it is unknown or its retention ran out. */
  get(queue: string, id: string, now: number): Promise<TaskRecord | undefined>;
  /**
   * Cancels a task: a pending or retrying one is never claimed again; an
   * active one's lease ends (its holder's renew and settle find it gone). The
   * task is kept as `cancelled`. `finished` when it had already ended.
   */
  cancel(queue: string, id: string, now: number): Promise<CancelResult>;
  /** Stores progress values of held tasks; `true` where the lease still matched. */
  progress(queue: string, updates: readonly ProgressUpdate[], now: number): Promise<boolean[]>;
  /** One page of tasks (keyset pagination on id: no OFFSET). */
  list(queue: string, query: TaskQuery, now: number): Promise<TaskPage>;
  /**
   * Deletes up to `batch` finished tasks that `retention` no longer keeps;
   * resolves to how many it deleted (fewer than `batch`: nothing left to do).
   * On a shared store one process prunes a queue at a time; the others delete nothing.
   */
  prune(queue: string, retention: Retention, now: number, batch: number): Promise<number>;
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

/** A store shared by several processes that can tell them of cancelled tasks at once. */
export interface CancelWatchable {
  /**
   * Calls `onCancel(id)` when a task of `queue` was cancelled, in any process.
   * A hint only (notifications can be lost): the holder's lease renewal finds
   * the cancellation too. Returns the function that stops watching.
   */
  watchCancels(queue: string, onCancel: (id: string) => void): () => void;
}

/** True when `store` tells other processes of cancelled tasks. */
export function isCancelWatchable(store: Store): store is Store & CancelWatchable {
  return typeof (store as Partial<CancelWatchable>).watchCancels === 'function';
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
  /** `bridged`: the event came from another runtime, which recorded it for the durable subscriptions already. */
  publish(topic: string, payload: unknown, options?: { source?: string; bridged?: boolean }): number;
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

/** One schedule as stored (issue #15): its definition and the last slot handled. */
export interface ScheduleRow {
  name: string;
  /** The definition as JSON text (what `rt.schedule` was given, resolved); the runtime reads it back. */
  definition: string;
  /** Epoch ms of the last slot handled (enqueued, or skipped as missed); later slots are still to come. */
  lastSlot: number;
}

/** What `fireSchedule` did. */
export type FireResult =
  /** The slot moved from `from` to `to` and the tasks were enqueued, in the same transaction. */
  | { status: 'fired'; results: EnqueueResult[] }
  /** Another process moved the slot first (nothing was written), or the schedule was removed. */
  | { status: 'moved' | 'gone' };

/** A store that keeps schedules, so that each slot is enqueued once across every process sharing it. */
export interface Schedules {
  /**
   * Adds schedule `name` with `lastSlot = since`. When it exists with the same
   * definition, nothing changes; with another definition, the definition is
   * replaced and `lastSlot` becomes at least `since` (a changed schedule does not
   * catch up slots from before it was registered). Resolves to the row as stored.
   */
  saveSchedule(name: string, definition: string, since: number): Promise<ScheduleRow>;
  readSchedule(name: string): Promise<ScheduleRow | undefined>;
  /** Every stored schedule, by name. */
  listSchedules(): Promise<ScheduleRow[]>;
  /** Deletes schedule `name`; true when it existed. */
  removeSchedule(name: string): Promise<boolean>;
  /**
   * In ONE transaction: when the row's `lastSlot` still equals `from`, sets it to
   * `to` and enqueues `tasks` on `queue` (a compare-and-set, so two processes
   * cannot both handle a slot); otherwise writes nothing.
   */
  fireSchedule(
    name: string,
    fire: { from: number; to: number; queue: string; tasks: readonly NewTask[] },
    now: number,
  ): Promise<FireResult>;
}

/** True when `store` keeps schedules. */
export function isSchedules(store: Store): store is Store & Schedules {
  return typeof (store as Partial<Schedules>).fireSchedule === 'function';
}

/** One published event to record for durable subscriptions (issue #16.5). */
export interface DurableEvent {
  /** The topic it was published on (no wildcards). */
  topic: string;
  /** Epoch ms from the publisher's clock. */
  time: number;
  /** Its envelope `{ id, type, time, source, data }` as JSON text: the payload of each task it becomes. */
  envelope: string;
}

/** A durable subscription as stored: its name and the topic pattern it records. */
export interface DurableSubscriptionRecord {
  name: string;
  pattern: string;
  createdAt: number;
  /** The dot path into each payload that names its task's group; absent: tasks have no group. */
  groupBy?: string;
}

/**
 * A store that keeps durable bus subscriptions (name → topic pattern) and an
 * event log, and turns each recorded event into one task per matching
 * subscription on the queue `durableQueueName(name)`, in one transaction.
 * Patterns are matched by the store against its own table inside that
 * transaction, so a publisher records for subscriptions other processes made.
 */
export interface DurableBus {
  /**
   * Creates durable subscription `name` on `pattern`, or moves an existing one
   * to `pattern`. With `replaySince`, a subscription created now also gets, in
   * the same transaction, a task for every logged event at or after that time
   * whose topic matches. `groupBy` (a dot path into the payload, see
   * `durableTasks`) is stored with it and groups every task made for it from
   * then on; saving without it removes it. Resolves to true when it was created.
   */
  saveDurable(name: string, pattern: string, now: number, replaySince?: number, groupBy?: string): Promise<boolean>;
  /** Deletes durable subscription `name` for good; true when it existed. */
  deleteDurable(name: string): Promise<boolean>;
  /** Every durable subscription on the store. */
  listDurables(): Promise<DurableSubscriptionRecord[]>;
  /**
   * In one transaction: logs `events` and enqueues each on the queue of every
   * durable subscription whose pattern matches its topic. Resolves to the
   * number of tasks enqueued.
   */
  recordEvents(events: readonly DurableEvent[], now: number): Promise<number>;
  /** Deletes logged events older than `before`; resolves to how many. */
  pruneEvents(before: number): Promise<number>;
}

/**
 * A durable bus that tells every runtime on it of each change of
 * subscriptions (the memory store: one process; Postgres: NOTIFY). Runtimes on
 * it need not poll the subscriptions: a store whose notices can be lost polls
 * for them while they may be.
 */
export interface WatchedDurableBus {
  /**
   * Calls `onChange` after every save or delete of a durable subscription,
   * made by any runtime on the store. A store whose notices can be lost (a
   * dropped LISTEN connection) also calls it once they may have been missed,
   * and every `pollMs` (default: the bus's default `refreshMs`, 1 s) while no
   * notice can arrive. Returns the function that stops.
   */
  watchDurables(onChange: () => void, pollMs?: number): () => void;
}

/** True when `store` tells of every change of its durable subscriptions. */
export function isWatchedDurableBus(store: Store): store is Store & DurableBus & WatchedDurableBus {
  return isDurableBus(store) && typeof (store as Partial<WatchedDurableBus>).watchDurables === 'function';
}

/** A durable bus that can record inside the caller's open transaction (the outbox pattern). */
export interface TransactionalDurableBus {
  /** `recordEvents` inside the caller's open transaction `tx` (for Postgres, a `pg` client after `BEGIN`). */
  recordEventsWith(tx: unknown, events: readonly DurableEvent[], now: number): Promise<number>;
}

/** True when `store` keeps durable bus subscriptions. */
export function isDurableBus(store: Store): store is Store & DurableBus {
  return typeof (store as Partial<DurableBus>).recordEvents === 'function';
}

/** True when `store` can record bus events inside a caller's transaction. */
export function isTransactionalDurableBus(store: Store): store is Store & DurableBus & TransactionalDurableBus {
  return isDurableBus(store) && typeof (store as Partial<TransactionalDurableBus>).recordEventsWith === 'function';
}

/** The queue that carries durable subscription `name`'s events. */
export function durableQueueName(name: string): string {
  return `bus:${name}`;
}

/** Whether `topic` (no wildcards) matches `pattern` (`*` = one token, `>` = one or more trailing tokens). */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return t.length > i;
    if (i >= t.length) return false;
    if (token !== '*' && token !== t[i]) return false;
  }
  return p.length === t.length;
}

/**
 * Operator actions on dead tasks (the console's "delete"): part of the task
 * contract, kept apart so a store written before it can still be read.
 */
export interface DeadTaskRemoval {
  /**
   * Deletes the dead tasks of `queue` among `ids` in one transaction; ids that
   * are unknown, of another queue or not dead are left alone. Resolves to the ids deleted.
   */
  deleteDead(queue: string, ids: readonly string[]): Promise<string[]>;
}

/** True when `store` can delete dead tasks. */
export function canDeleteDead(store: Store): store is Store & DeadTaskRemoval {
  return typeof (store as Partial<DeadTaskRemoval>).deleteDead === 'function';
}

/**
 * A paused flag per queue kept in the store, obeyed by every runtime on it
 * (Postgres: the whole fleet; SQLite: every process on the file): a paused
 * queue claims nothing until resumed. The runtime's own `queue.pause()` is
 * separate and local; a queue claims only while neither pauses it.
 */
export interface QueuePauses {
  /** Sets or clears the flag of `queue`; `now` is recorded as when it was paused. */
  setQueuePaused(queue: string, paused: boolean, now: number): Promise<void>;
  /** The queues whose flag is set. */
  pausedQueues(): Promise<string[]>;
  /**
   * Optional: calls `onChange` when a flag may have changed in another process
   * (a hint; runtimes poll as well). Returns the function that stops watching.
   */
  watchPauses?(onChange: () => void): () => void;
}

/** True when `store` keeps queue pause flags shared by its runtimes. */
export function hasQueuePauses(store: Store): store is Store & QueuePauses {
  return typeof (store as Partial<QueuePauses>).setQueuePaused === 'function';
}
