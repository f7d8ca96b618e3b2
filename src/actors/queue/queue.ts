import { type AnyActorRef, createActor } from 'xstate';
import { MicrotaskBatcher } from '../../core/batcher.js';
import { invalidOptions, KeelError } from '../../core/errors.js';
import { decodeOrText, encodeValue } from '../../core/json.js';
import { describeValue } from '../../core/options.js';
import { untilSnapshot } from '../../core/untilSnapshot.js';
import {
  type CancelResult,
  canDeleteDead,
  type EnqueueResult,
  hasQueuePauses,
  isCancelWatchable,
  isTransactional,
  isWatchable,
  type NewTask,
  type QueueStats,
  type TaskStore,
} from '../../stores/store.js';
import type { Component, Host } from '../host.js';
import { type GuardingBreaker, QueueEngine, type TaskEventPayload } from './engine.js';
import { checkEnqueue } from './enqueueOptions.js';
import { idlePollerFor } from './idlePoller.js';
import type { EnqueueOptions, ResolvedQueueOptions } from './options.js';
import { queueLogic } from './queueActor.js';
import { Pruner } from './retention.js';
import { followStorePause } from './storePauses.js';
import { checkListQuery, type ListQuery, type TaskInfo, taskInfo } from './taskInfo.js';

/** A dead-lettered task. */
export interface DeadTask<P = any> {
  id: string;
  payload: P;
  attempt: number;
  key?: string;
  /** What the last attempt threw. */
  error?: string;
  /** When it died. */
  diedAt: number;
}

/** A durable task queue. */
export interface Queue<P = any> {
  readonly name: string;
  /** The queue's actor in the runtime's system (system id `queue.<name>`). */
  readonly actor: AnyActorRef;
  /** Stores a task; resolves once it is durable. */
  enqueue(payload: P, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** Resolves when nothing is pending, delayed, retrying or active. */
  drain(): Promise<void>;
  stats(): Promise<QueueStats>;
  dead(): Promise<DeadTask<P>[]>;
  /** Puts a dead task back (attempts reset); false when a live task holds its key. */
  redrive(id: string): Promise<boolean>;
  /**
   * One task in any state within retention (see `TaskInfo`: payload, result
   * and progress decoded), or undefined when it is unknown or pruned.
   */
  get(id: string): Promise<TaskInfo<P> | undefined>;
  /**
   * One page of the queue's tasks, oldest first (`order: 'newest'`: the latest
   * enqueued first); pass `next` as `after` for the following page.
   */
  list(query?: ListQuery): Promise<{ items: TaskInfo<P>[]; next?: string }>;
  /**
   * Cancels a task, from any process: a pending or retrying one never runs; a
   * running one's `task.signal` aborts (reason: `KeelError` `CANCELLED`)
   * wherever it runs, and it is not retried. Ends in state `cancelled`,
   * published as `task.<queue>.cancelled`. `finished` when it had already ended.
   */
  cancel(id: string): Promise<CancelResult>;
  /**
   * Deletes the listed dead tasks (an operator's clean-up; live tasks are left
   * alone: cancel those). Resolves to the ids that were deleted.
   */
  deleteDead(ids: readonly string[]): Promise<string[]>;
  /** Stops claiming new tasks (running ones finish), in this runtime; a store's pause flag (console) pauses it too. */
  pause(): void;
  resume(): void;
  /**
   * Stops the queue as `rt.stop()` would (active handlers get `graceMs`, then
   * their tasks go back to pending) and frees its actor, timers and bus
   * subscriptions; the runtime forgets the name, so `rt.queue(name, ...)`
   * creates a new queue. This handle then refuses everything with `CLOSED`.
   * Stored tasks stay in the store.
   */
  close(): Promise<void>;
  /** @internal wakes the workers at once: tasks were written to the store by another path (durable bus subscriptions). */
  notify(): void;
}

/** How often `drain` re-reads a shared store's counts while other processes work its queue. */
const SHARED_DRAIN_POLL_MS = 25;

interface PendingEnqueue {
  task: NewTask;
  resolve: (r: EnqueueResult) => void;
  reject: (e: unknown) => void;
}

/** What a queue needs of its runtime. */
export type QueueHost = Pick<
  Host,
  'store' | 'clock' | 'publish' | 'subscribe' | 'report' | 'whenRunning' | 'system' | 'state' | 'observe'
> & {
  /** The runtime's breaker called `name` (created on first use). */
  breaker(name: string): GuardingBreaker;
};

/**
 * Creates the queue `name`: its engine, its actor (spawned as `queue.<name>`)
 * and the component the runtime starts and stops with itself.
 */
export function createQueue(
  rt: QueueHost,
  name: string,
  o: ResolvedQueueOptions,
  /** Called once `close()` has stopped the queue: the registry forgets it. */
  onClose: (component: Component) => void = () => {},
): { queue: Queue; component: Component } {
  if (typeof (rt.store as Partial<TaskStore>).claim !== 'function') {
    throw new KeelError(
      'INVALID_OPTIONS',
      `queue('${name}'): the runtime's store (${rt.store.kind}) does not implement the task queue methods of Store`,
    );
  }
  const report = (error: unknown, detail: string) => rt.report(error, detail);
  const pruner = new Pruner(name, rt.store, rt.clock, o.retention, report);
  const engine = new QueueEngine({
    queue: name,
    store: rt.store,
    clock: rt.clock,
    handler: o.handler,
    concurrency: o.concurrency,
    retry: o.retry,
    leaseMs: o.leaseMs,
    timeoutMs: o.timeoutMs,
    pollMs: o.pollMs,
    batchSize: o.batchSize,
    limits: o.limits,
    poller: idlePollerFor(rt, rt.store, rt.clock, report),
    breakerName: o.breaker,
    breaker: o.breaker === undefined ? undefined : () => rt.breaker(o.breaker!),
    publish: (topic, payload: TaskEventPayload) => rt.publish(topic, payload),
    report,
    observe: rt.observe,
    finished: (state) => pruner.finished(state),
  });
  const actor = startActor(rt, name, engine, report, o);
  engine.attach(actor);
  let offBreaker: (() => void) | undefined;
  let unwatch: (() => void) | undefined;
  let unwatchCancels: (() => void) | undefined;
  let started = false;
  // The queue claims only while neither this runtime (`pause()`) nor the store's flag (the console, fleet-wide) pauses it.
  let localPaused = o.paused;
  let storePaused = false;
  let unfollowPause: (() => void) | undefined;
  const applyPause = () => actor.send({ type: localPaused || storePaused ? 'queue.pause' : 'queue.resume' });

  const component: Component = {
    kind: 'queue',
    name,
    start: async () => {
      started = true;
      // An isolated breaker gives no retry time: its tasks wait for it to close.
      if (o.breaker !== undefined) {
        offBreaker = rt.subscribe(`breaker.${o.breaker}.closed`, () => actor.send({ type: 'queue.ungate' }));
      }
      // Work enqueued by other processes wakes this one at once instead of at the next poll.
      if (o.handler !== undefined) {
        unwatch = isWatchable(rt.store) ? rt.store.watch(name, () => engine.notify()) : undefined;
        // A task cancelled by another process stops here at once, not at the next lease renewal.
        unwatchCancels = isCancelWatchable(rt.store)
          ? rt.store.watchCancels(name, (id) => engine.cancelled(id))
          : undefined;
      }
      pruner.start();
      if (o.handler !== undefined && hasQueuePauses(rt.store)) {
        const follow = followStorePause(rt.store, rt.clock, report, name, (paused) => {
          storePaused = paused;
          applyPause();
        });
        unfollowPause = follow.stop;
        // A queue paused fleet-wide must not claim a batch before it has read its flag.
        await follow.ready;
      }
      actor.send({ type: 'queue.start' });
    },
    stop: async () => {
      unwatch?.();
      unwatch = undefined;
      unwatchCancels?.();
      unwatchCancels = undefined;
      const pruned = pruner.stop();
      unfollowPause?.();
      unfollowPause = undefined;
      actor.send({ type: 'queue.stop' });
      if (actor.getSnapshot().status === 'active') {
        await untilSnapshot<{ status: string }>(actor, (s) => s.status !== 'active');
      }
      offBreaker?.();
      await pruned;
    },
  };

  let closing: Promise<void> | undefined;
  const closedError = (what: string) =>
    new KeelError(
      'CLOSED',
      `queue('${name}').${what}: the queue was closed; call rt.queue('${name}', ...) for a new one`,
    );

  /** Waits for the store to be open; rejects when it never will be. */
  const ready = async (what: string): Promise<void> => {
    if (closing) throw closedError(what);
    await rt.whenRunning(`queue('${name}').${what}`);
    if (!started || engine.isStopped) {
      throw new KeelError('RUNTIME_STOPPED', `queue('${name}').${what}: the runtime is stopping or stopped`);
    }
  };

  /** Enqueue batches handed to the store and not yet answered: `drain` waits for those begun before it. */
  const writing = new Set<Promise<void>>();
  // Enqueues of one turn share one store transaction.
  const batch = new MicrotaskBatcher<PendingEnqueue>((items) => {
    const write = writeBatch(items);
    writing.add(write);
    void write.finally(() => writing.delete(write));
    return write;
  });
  async function writeBatch(items: PendingEnqueue[]): Promise<void> {
    try {
      await ready('enqueue');
      const results = await rt.store.enqueue(
        name,
        items.map((i) => i.task),
        rt.clock.now(),
      );
      for (let i = 0; i < items.length; i++) items[i]!.resolve(results[i]!);
      engine.notify();
    } catch (error) {
      for (const i of items) i.reject(error);
    }
  }

  /** One enqueue inside the caller's transaction: not batched, since each caller's transaction is its own. */
  const enqueueIn = async (tx: unknown, task: NewTask): Promise<EnqueueResult> => {
    if (!isTransactional(rt.store)) {
      throw invalidOptions(
        `queue('${name}').enqueue`,
        'tx',
        `needs a store that can write in the caller's transaction (postgresStore); this one is ${rt.store.kind}`,
      );
    }
    if (typeof tx !== 'object' || tx === null || typeof (tx as { query?: unknown }).query !== 'function') {
      throw invalidOptions(`queue('${name}').enqueue`, 'tx', "must be the caller's client inside an open transaction");
    }
    await ready('enqueue');
    const [result] = await rt.store.enqueueWith(tx, name, [task], rt.clock.now());
    return result!;
  };

  const queue: Queue = {
    name,
    actor,

    enqueue(payload, options = {}) {
      try {
        if (closing) throw closedError('enqueue');
        const { key, runAt, tx, replace, priority, group } = checkEnqueue(name, options, rt.clock.now());
        const text = encodeValue(payload, `queue('${name}').enqueue: payload`, 'payload');
        const state = rt.state;
        // Not started (NOT_STARTED) or stopping (RUNTIME_STOPPED): `ready` rejects.
        if (state === 'idle' || state === 'stopping' || state === 'stopped') return ready('enqueue') as Promise<never>;
        // Asked here, in the caller's async context: stored with the task, the trace context of this enqueue
        // becomes the parent of its attempts' spans in whichever process claims it.
        const trace = rt.observe?.traceContext?.();
        const task: NewTask = {
          payload: text,
          runAt,
          ...(key !== undefined && { key }),
          ...(trace !== undefined && { trace }),
          ...(replace && key !== undefined && { replace }),
          ...(priority !== 0 && { priority }),
          ...(group !== undefined && { group }),
        };
        if (tx !== undefined) return enqueueIn(tx, task);
        return new Promise<EnqueueResult>((resolve, reject) => batch.add({ task, resolve, reject }));
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async drain() {
      // Enqueues called before this drain, also in this very turn, are part of what it waits for.
      void batch.flush();
      const before = [...writing];
      await ready('drain');
      await Promise.all(before);
      for (;;) {
        // Counted before the store is asked: what changes while it answers (a wake, a claim, a settle) is seen.
        const seen = engine.changes;
        if (engine.localIdle && batch.size === 0) {
          const s = await rt.store.stats(name, rt.clock.now());
          if (s.pending + s.active + s.retrying === 0 && engine.localIdle && batch.size === 0) return;
        }
        if (engine.isStopped) throw new KeelError('RUNTIME_STOPPED', `queue('${name}').drain: the runtime stopped`);
        // The counts may predate that change; waiting for the next one could wait for nothing.
        if (engine.changes !== seen) continue;
        if (!engine.localIdle || !isWatchable(rt.store)) {
          await engine.nextChange();
          continue;
        }
        // A shared store: other processes finish the rest, and nothing here hears of it; look again soon.
        let timer: unknown;
        await Promise.race([
          engine.nextChange(),
          new Promise<void>((resolve) => {
            timer = rt.clock.setTimeout(() => resolve(), SHARED_DRAIN_POLL_MS);
          }),
        ]);
        rt.clock.clearTimeout(timer);
      }
    },

    async stats() {
      await ready('stats');
      return rt.store.stats(name, rt.clock.now());
    },

    async dead() {
      await ready('dead');
      const rows = await rt.store.dead(name);
      return rows.map((r) => ({
        id: r.id,
        payload: decodeOrText(r.payload),
        attempt: r.attempt,
        ...(r.key !== undefined && { key: r.key }),
        ...(r.lastError !== undefined && { error: r.lastError }),
        diedAt: r.updatedAt,
      }));
    },

    async redrive(id) {
      await ready('redrive');
      const result = await rt.store.redrive(name, String(id), rt.clock.now());
      if (result === 'not-found') {
        throw new KeelError('NOT_FOUND', `queue('${name}').redrive: no dead task with id '${String(id)}'`);
      }
      engine.notify();
      return result === 'redriven';
    },

    async get(id) {
      await ready('get');
      const r = await rt.store.get(name, String(id), rt.clock.now());
      return r && taskInfo(r);
    },

    async list(query = {}) {
      const q = checkListQuery(name, query);
      await ready('list');
      const page = await rt.store.list(name, q, rt.clock.now());
      return { items: page.items.map(taskInfo), ...(page.next !== undefined && { next: page.next }) };
    },

    async cancel(id) {
      await ready('cancel');
      const result = await rt.store.cancel(name, String(id), rt.clock.now());
      if (result !== 'cancelled') return result;
      engine.cancelled(String(id));
      pruner.finished('cancelled');
      try {
        rt.publish(`task.${name}.cancelled`, { queue: name, id: String(id) });
      } catch (error) {
        report(error, `queue('${name}'): publishing task.${name}.cancelled failed`);
      }
      // A cancelled task no longer counts for drain.
      engine.notify();
      return result;
    },

    async deleteDead(ids) {
      if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) {
        throw invalidOptions(
          `queue('${name}').deleteDead`,
          'ids',
          `must be an array of task ids (strings), got ${describeValue(ids)}`,
        );
      }
      await ready('deleteDead');
      if (!canDeleteDead(rt.store)) {
        throw new KeelError(
          'INVALID_OPTIONS',
          `queue('${name}').deleteDead: the runtime's store (${rt.store.kind}) cannot delete tasks (no deleteDead)`,
        );
      }
      return rt.store.deleteDead(name, ids);
    },

    pause() {
      localPaused = true;
      applyPause();
    },

    resume() {
      localPaused = false;
      applyPause();
    },

    close() {
      if (!closing) {
        // Enqueues already batched reach the store first (flushed before `closing` is set); later ones get CLOSED.
        const flushed = batch.flush();
        closing = (async () => {
          await flushed;
          await Promise.all([...writing]);
          await component.stop?.();
          onClose(component);
        })();
      }
      return closing;
    },

    notify() {
      engine.notify();
    },
  };
  return { queue, component };
}

/**
 * Starts the queue's actor in the runtime's actor system with the root as its
 * parent, like a breaker's (see `startActor` in `src/actors/breaker/breaker.ts`):
 * registered as `queue.<name>` and inspected, but not added to the root
 * snapshot's `children`, which XState copies on every spawn and stop, so
 * thousands of queues (one per tenant) would cost O(N²). The queue's component
 * stops it (it reaches its final state).
 */
function startActor(
  rt: QueueHost,
  name: string,
  engine: QueueEngine,
  report: (error: unknown, detail: string) => void,
  o: ResolvedQueueOptions,
) {
  if (rt.state === 'stopping' || rt.state === 'stopped') {
    throw new KeelError('RUNTIME_STOPPED', `queue('${name}'): this runtime was stopped`);
  }
  const id = `queue.${name}`;
  if (rt.system.system.get(id) !== undefined) {
    throw new KeelError('DUPLICATE_NAME', `queue('${name}'): an actor with system id '${id}' already runs`);
  }
  const actor = createActor(queueLogic(engine, report), {
    parent: rt.system,
    id,
    systemId: id,
    input: { concurrency: o.concurrency, graceMs: o.graceMs, startPaused: o.paused },
  });
  actor.start();
  return actor;
}
