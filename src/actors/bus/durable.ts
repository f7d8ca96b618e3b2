import { invalidOptions, KeelError } from '../../core/errors.js';
import { type DurableBus, durableQueueName, isDurableBus, topicMatches } from '../../stores/store.js';
import type { Component } from '../host.js';
import { DurableCatalog } from './durableCatalog.js';
import { checkDurableOptions, type ResolvedBusOptions } from './durableOptions.js';
import { DurableRecorder } from './durableRecorder.js';
import type { DurableHandler, DurableHost, DurableQueue } from './durableTypes.js';
import type { BusEvent } from './event.js';
import { parsePattern } from './topics.js';

export type {
  Delivery,
  DurableHandler,
  DurableHost,
  DurableQueue,
  DurableQueueOptions,
  RecordFailure,
} from './durableTypes.js';

/** A durable subscription made in this process. */
interface LocalSubscription {
  readonly name: string;
  pattern: string;
  handler: DurableHandler;
  from: 'now' | 'earliest';
  groupBy: string | undefined;
  active: boolean;
  readonly queue: DurableQueue;
}

/**
 * Durable bus subscriptions (issue #16.5), built on the task queue: each one is
 * the queue `bus:<name>`, whose tasks are the envelopes of the events it
 * matched, grouped by its `groupBy`. This class keeps the subscriptions made
 * here and saves them to the store; `DurableCatalog` knows every
 * subscription on the store and `DurableRecorder` records the publishes that
 * match one. Publishes that match none cost nothing more: the bus calls
 * `record` only while some exist.
 */
export class DurableSubscriptions {
  private readonly local = new Map<string, LocalSubscription>();
  /** Registrations under way: recordings wait for them, so a publish right after a subscribe is recorded for it. */
  private readonly saving = new Set<Promise<unknown>>();
  private readonly catalog: DurableCatalog;
  private readonly recorder: DurableRecorder;
  private started: Promise<void>;
  private markStarted!: () => void;
  private markNeverStarted!: (error: unknown) => void;

  constructor(
    private readonly host: DurableHost,
    private readonly options: ResolvedBusOptions,
    /** Called with `record` while some durable subscription is known, with undefined while none is. */
    private readonly setRecorder: (
      record: ((topic: string, payload: unknown, source?: string) => void) | undefined,
    ) => void,
  ) {
    this.started = new Promise<void>((resolve, reject) => {
      this.markStarted = resolve;
      this.markNeverStarted = reject;
    });
    this.started.catch(() => {});
    this.catalog = new DurableCatalog(
      host,
      options.refreshMs,
      () => this.local.values(),
      (any) => this.setRecorder(any ? this.recorder.record : undefined),
    );
    this.recorder = new DurableRecorder(
      host,
      options,
      (topic) => this.catalog.matches(topic),
      async () => {
        await this.started;
        await Promise.allSettled([...this.saving]);
      },
      (events) => this.wake(events.map((e) => e.topic)),
    );
  }

  /** The component the runtime starts first and stops last, after the queues. */
  readonly component: Component = {
    kind: 'bus',
    name: 'durable subscriptions',
    start: async () => {
      const store = this.host.store;
      if (!isDurableBus(store)) {
        this.markStarted();
        return;
      }
      for (const sub of this.local.values()) this.register(store, sub);
      await Promise.all([...this.saving]);
      await this.catalog.start(store);
      await this.recorder.prune(store);
      this.markStarted();
    },
    stop: async () => {
      this.markNeverStarted(new KeelError('RUNTIME_STOPPED', 'bus.publish: the runtime stopped before it started'));
      await Promise.allSettled([this.recorder.stop(), this.catalog.stop(), ...this.saving]);
      this.setRecorder(undefined);
    },
  };

  /** `rt.bus.subscribe(topic, handler, { durable, ... })`: returns the function that stops delivery in this process. */
  subscribe(topic: string, handler: DurableHandler, options: unknown): () => void {
    const o = checkDurableOptions(topic, options);
    parsePattern(topic);
    const owner = `bus.subscribe('${topic}')`;
    if (typeof handler !== 'function') {
      throw invalidOptions(owner, 'handler', 'must be a function (payload, event, delivery) => unknown');
    }
    const store = this.host.store;
    if (!isDurableBus(store)) {
      throw invalidOptions(
        owner,
        'durable',
        `needs a store that keeps durable subscriptions; this one is ${store.kind}`,
      );
    }
    const state = this.host.state;
    if (state === 'stopping' || state === 'stopped') {
      throw new KeelError('RUNTIME_STOPPED', `${owner}: the runtime is ${state}`);
    }
    let sub = this.local.get(o.durable);
    if (sub?.active) {
      throw new KeelError('DUPLICATE_NAME', `${owner}: durable subscription '${o.durable}' is already subscribed here`);
    }
    if (sub) {
      // Subscribed before in this process: the queue stays, with the options of the first subscribe.
      sub.pattern = topic;
      sub.handler = handler;
      sub.from = o.from;
      sub.groupBy = o.groupBy;
      sub.active = true;
      sub.queue.resume();
    } else {
      const name = o.durable;
      const queue = this.host.queue(durableQueueName(name), {
        handler: (task) => {
          const event = task.payload as BusEvent;
          return (this.local.get(name) as LocalSubscription).handler(event.data, event, {
            taskId: task.id,
            attempt: task.attempt,
            signal: task.signal,
          });
        },
        ...(o.retry !== undefined && { retry: o.retry }),
        ...(o.breaker !== undefined && { breaker: o.breaker }),
        ...(o.leaseMs !== undefined && { leaseMs: o.leaseMs }),
        ...(o.groupConcurrency !== undefined && { groupConcurrency: o.groupConcurrency }),
        concurrency: o.concurrency ?? 1,
      });
      sub = { name, pattern: topic, handler, from: o.from, groupBy: o.groupBy, active: true, queue };
      this.local.set(name, sub);
    }
    this.catalog.know(sub.name, topic);
    if (state === 'running') this.register(store, sub);
    const held = sub;
    return () => {
      if (!held.active) return;
      held.active = false;
      held.queue.pause();
    };
  }

  /** `rt.bus.unsubscribeDurable(name)`: deletes the subscription for good; true when the store had it. */
  async unsubscribeDurable(name: string): Promise<boolean> {
    const store = this.host.store;
    if (!isDurableBus(store)) return false;
    await this.host.whenRunning(`bus.unsubscribeDurable('${name}')`);
    const sub = this.local.get(name);
    if (sub?.active) {
      sub.active = false;
      sub.queue.pause();
    }
    this.catalog.forget(name);
    return store.deleteDurable(name);
  }

  /** Resolves once every publish made so far is recorded; rejects with a recording failure not reported by a flush yet. */
  flush(): Promise<void> {
    return this.recorder.flush();
  }

  /** `publish(topic, payload, { tx })`: records inside the caller's transaction; resolves to the tasks it made. */
  publishIn(tx: unknown, topic: string, payload: unknown, source: string | undefined): Promise<number> {
    return this.recorder.publishIn(tx, topic, payload, source);
  }

  /** Wakes this process's durable queues that recorded events went to (other processes hear of them from the store or their poll). */
  private wake(topics: readonly string[]): void {
    for (const sub of this.local.values()) {
      if (sub.active && topics.some((t) => topicMatches(sub.pattern, t))) sub.queue.notify();
    }
  }

  /** Writes `sub` to the store; with `from: 'earliest'`, a new subscription gets the logged events within the retention. */
  private register(store: DurableBus, sub: LocalSubscription): void {
    const now = this.host.clock.now();
    const since = sub.from === 'earliest' ? now - this.options.retentionMs : undefined;
    const saved = store.saveDurable(sub.name, sub.pattern, now, since, sub.groupBy).then(
      () => sub.queue.notify(),
      (error: unknown) => this.host.report(error, `durable subscription '${sub.name}' could not be saved`),
    );
    this.saving.add(saved);
    void saved.finally(() => this.saving.delete(saved));
  }
}
