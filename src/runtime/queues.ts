import type { AnyActorRef } from 'xstate';
import type { RetryPolicy } from '../actors/queue/backoff.js';
import { QueueEngine, type Task, type TaskEventPayload } from '../actors/queue/engine.js';
import { encodePayload } from '../actors/queue/payload.js';
import { queueLogic } from '../actors/queue/queueActor.js';
import { parseTopic } from '../actors/topics.js';
import type { EnqueueResult, NewTask, QueueStats, Store, TaskRecord } from '../stores/store.js';
import type { Runtime } from './createRuntime.js';
import { invalidOptions, KeelError } from './errors.js';
import { parseRetry } from './retryPolicy.js';
import { untilSnapshot } from './untilState.js';

export type { Task, TaskEventPayload } from '../actors/queue/engine.js';
export type { QueueStats } from '../stores/store.js';

/** Options of `rt.queue` (see DESIGN.md). */
export interface QueueOptions<P = any> {
  /** Runs each task; resolve = done, throw = retry (a `NonRetryableError` = dead). Omit for a queue that only enqueues. */
  handler?: (task: Task<P>) => unknown;
  /** Tasks run at once by this process; default 1. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** A claimed task is handed out again when its worker has not renewed the lease for this long; default 30,000. */
  leaseMs?: number;
  /** While the breaker with this name is open, tasks wait for it instead of spending attempts. */
  breaker?: string;
  /** An attempt that runs longer fails (its signal aborts); default 0 = no limit. */
  timeoutMs?: number;
  /** How long `rt.stop()` lets active handlers finish before aborting them; default 10,000. */
  graceMs?: number;
  /** How often to look for work made due elsewhere (other processes, expired leases); default 1,000. */
  pollMs?: number;
  /** Tasks claimed ahead of the workers per store call; default 32. */
  batchSize?: number;
  /** Start paused: nothing is claimed until `resume()`. */
  paused?: boolean;
}

/** Options of one enqueue. */
export interface EnqueueOptions {
  /** Dedup key: while a task with this key is pending, active or retrying, no second one is added. */
  key?: string;
  /** Not run before this many ms from now. */
  delayMs?: number;
  /**
   * The caller's open transaction (for `postgresStore`, a `pg` client after
   * `BEGIN`): the task is written in it, so it commits or rolls back with the
   * caller's own writes. Workers see it once the caller commits.
   */
  tx?: unknown;
}

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
  /** One task as stored, or undefined once it succeeded. */
  get(id: string): Promise<TaskRecord | undefined>;
  /** Stops claiming new tasks (running ones finish). */
  pause(): void;
  resume(): void;
}

const registries = new WeakMap<Runtime<any>, Map<string, Queue>>();

/** Returns the runtime's queue called `name`, creating it on first use. */
export function queueFor(rt: Runtime<any>, name: string, options?: QueueOptions): Queue {
  checkName(name);
  let registry = registries.get(rt);
  if (!registry) registries.set(rt, (registry = new Map()));
  const existing = registry.get(name);
  if (existing) {
    if (options !== undefined) {
      throw new KeelError(
        'DUPLICATE_NAME',
        `queue('${name}') already exists; call rt.queue('${name}') without options`,
      );
    }
    return existing;
  }
  const queue = createQueue(rt, name, checkOptions(name, options ?? {}));
  registry.set(name, queue);
  return queue;
}

/** A queue name goes into bus topics (`task.<name>.succeeded`), so it must make a valid topic. */
function checkName(name: unknown): void {
  if (typeof name !== 'string' || name === '') {
    throw invalidOptions('queue', 'name', `must be a non-empty string, got ${String(name)}`);
  }
  try {
    parseTopic(`task.${name}.succeeded`);
  } catch (error) {
    throw invalidOptions('queue', 'name', `'${name}' cannot be part of a bus topic: ${(error as Error).message}`);
  }
}

const KNOWN = new Set([
  'handler',
  'concurrency',
  'retry',
  'leaseMs',
  'breaker',
  'timeoutMs',
  'graceMs',
  'pollMs',
  'batchSize',
  'paused',
]);

interface Checked {
  handler: ((task: Task<any>) => unknown) | undefined;
  concurrency: number;
  retry: RetryPolicy;
  leaseMs: number;
  breaker: string | undefined;
  timeoutMs: number;
  graceMs: number;
  pollMs: number;
  batchSize: number;
  paused: boolean;
}

function checkOptions(name: string, o: QueueOptions): Checked {
  const owner = `queue('${name}')`;
  if (typeof o !== 'object' || o === null) throw invalidOptions(owner, 'options', 'must be an object');
  // A misspelt option would otherwise be ignored silently.
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw invalidOptions(owner, key, `is not a queue option (known: ${[...KNOWN].join(', ')})`);
  }
  if (o.handler !== undefined && typeof o.handler !== 'function') {
    throw invalidOptions(owner, 'handler', 'must be a function (task) => Promise');
  }
  const int = (option: string, v: unknown, dflt: number, min: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw invalidOptions(owner, option, `must be an integer >= ${min}, got ${String(v)}`);
    }
    return v;
  };
  // Durations reach timers and stored timestamps: Infinity would fire a Node timer at once.
  const ms = (option: string, v: unknown, dflt: number, min: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || Number.isNaN(v) || v < min) {
      throw invalidOptions(owner, option, `must be a number >= ${min}, got ${String(v)}`);
    }
    if (!Number.isFinite(v)) throw invalidOptions(owner, option, `must be finite, got ${v}`);
    return v;
  };
  const retry = parseRetry(owner, 'retry', o.retry);
  if (o.breaker !== undefined && (typeof o.breaker !== 'string' || o.breaker === '')) {
    throw invalidOptions(owner, 'breaker', 'must be the name of a breaker');
  }
  return {
    handler: o.handler,
    concurrency: o.handler === undefined ? 0 : int('concurrency', o.concurrency, 1, 1),
    retry,
    leaseMs: ms('leaseMs', o.leaseMs, 30_000, 1),
    breaker: o.breaker,
    timeoutMs: ms('timeoutMs', o.timeoutMs, 0, 0),
    graceMs: ms('graceMs', o.graceMs, 10_000, 0),
    pollMs: ms('pollMs', o.pollMs, 1000, 1),
    batchSize: int('batchSize', o.batchSize, 32, 1),
    paused: o.paused === true,
  };
}

/** How often `drain` re-reads a shared store's counts while other processes work its queue. */
const SHARED_DRAIN_POLL_MS = 25;

interface PendingEnqueue {
  task: NewTask;
  resolve: (r: EnqueueResult) => void;
  reject: (e: unknown) => void;
}

function createQueue(rt: Runtime<any>, name: string, o: Checked): Queue {
  if (typeof (rt.store as Partial<Store>).claim !== 'function') {
    throw new KeelError(
      'INVALID_OPTIONS',
      `queue('${name}'): the runtime's store (${rt.store.kind}) does not implement the task queue methods of Store`,
    );
  }
  const report = (error: unknown, detail: string) => rt.report(error, detail);
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
    breakerName: o.breaker,
    breaker: o.breaker === undefined ? undefined : () => rt.breaker(o.breaker!),
    publish: (topic, payload: TaskEventPayload) => rt.bus.publish(topic, payload),
    report,
  });
  const actor = rt.spawn(queueLogic(engine, report), {
    id: `queue.${name}`,
    systemId: `queue.${name}`,
    input: { concurrency: o.concurrency, graceMs: o.graceMs, startPaused: o.paused },
  });
  let offBreaker: (() => void) | undefined;
  let unwatch: (() => void) | undefined;
  let started = false;

  rt.addComponent({
    kind: 'queue',
    name,
    start: async () => {
      started = true;
      // An isolated breaker gives no retry time: its tasks wait for it to close.
      if (o.breaker !== undefined)
        offBreaker = rt.bus.subscribe(`breaker.${o.breaker}.closed`, () => engine.openGate());
      // Work enqueued by other processes wakes this one at once instead of at the next poll.
      if (o.handler !== undefined) unwatch = rt.store.watch?.(name, () => engine.notify());
      actor.send({ type: 'queue.start' });
    },
    stop: async () => {
      unwatch?.();
      unwatch = undefined;
      actor.send({ type: 'queue.stop' });
      await untilSnapshot<{ status: string }>(actor, (s) => s.status !== 'active');
      offBreaker?.();
    },
  });

  /** Waits for the store to be open; rejects when it never will be. */
  const ready = async (what: string): Promise<void> => {
    await rt.whenRunning(`queue('${name}').${what}`);
    if (!started || engine.isStopped) {
      throw new KeelError('RUNTIME_STOPPED', `queue('${name}').${what}: the runtime is stopping or stopped`);
    }
  };

  let batch: PendingEnqueue[] = [];
  const flushEnqueues = async () => {
    const items = batch;
    batch = [];
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
  };

  /** One enqueue inside the caller's transaction: not batched, since each caller's transaction is its own. */
  const enqueueIn = async (tx: unknown, task: NewTask): Promise<EnqueueResult> => {
    if (typeof rt.store.enqueueWith !== 'function') {
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

  return {
    name,
    actor,

    enqueue(payload, options = {}) {
      try {
        if (typeof options !== 'object' || options === null)
          throw invalidOptions(`queue('${name}').enqueue`, 'options', 'must be an object');
        const { key, delayMs, tx } = options;
        if (key !== undefined && (typeof key !== 'string' || key === '')) {
          throw invalidOptions(`queue('${name}').enqueue`, 'key', `must be a non-empty string, got ${String(key)}`);
        }
        if (delayMs !== undefined && (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0)) {
          throw invalidOptions(
            `queue('${name}').enqueue`,
            'delayMs',
            `must be a finite number >= 0, got ${String(delayMs)}`,
          );
        }
        const text = encodePayload(name, payload);
        const state = rt.state;
        // Not started (NOT_STARTED) or stopping (RUNTIME_STOPPED): `ready` rejects.
        if (state === 'idle' || state === 'stopping' || state === 'stopped') return ready('enqueue') as Promise<never>;
        const task: NewTask = {
          payload: text,
          runAt: rt.clock.now() + (delayMs ?? 0),
          ...(key !== undefined && { key }),
        };
        if (tx !== undefined) return enqueueIn(tx, task);
        return new Promise<EnqueueResult>((resolve, reject) => {
          // Enqueues of one turn share one store transaction.
          if (batch.push({ task, resolve, reject }) === 1) queueMicrotask(() => void flushEnqueues());
        });
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async drain() {
      await ready('drain');
      for (;;) {
        if (engine.localIdle && batch.length === 0) {
          const s = await rt.store.stats(name, rt.clock.now());
          if (s.pending + s.active + s.retrying === 0 && engine.localIdle && batch.length === 0) return;
        }
        if (engine.isStopped) throw new KeelError('RUNTIME_STOPPED', `queue('${name}').drain: the runtime stopped`);
        if (!engine.localIdle || !rt.store.watch) {
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
        payload: readablePayload(r.payload),
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
      return rt.store.get(name, String(id), rt.clock.now());
    },

    pause() {
      actor.send({ type: 'queue.pause' });
    },

    resume() {
      actor.send({ type: 'queue.resume' });
    },
  };
}

/** A dead task's payload; one that is not JSON (why it died) is shown as its stored text, so `dead()` still lists it. */
function readablePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
