import { randomUUID } from 'node:crypto';
import { MicrotaskBatcher } from '../../core/batcher.js';
import { invalidOptions } from '../../core/errors.js';
import { encodeValue } from '../../core/json.js';
import {
  type DurableBus,
  type DurableEvent,
  durableQueueName,
  isTransactionalDurableBus,
  type Store,
} from '../../stores/store.js';
import type { ResolvedBusOptions } from './durableOptions.js';
import type { DurableHost, RecordFailure } from './durableTypes.js';
import { parseTopic } from './topics.js';

/**
 * Records publishes for durable subscriptions: the publishes of one turn go to
 * the store in one transaction, in which the store matches each event against
 * every subscription it holds and enqueues it on their queues.
 */
export class DurableRecorder {
  /** Recordings under way. */
  private readonly writing = new Set<Promise<void>>();
  /** Recording failures no `flush` has reported yet. */
  private failures: unknown[] = [];
  private readonly batch = new MicrotaskBatcher<DurableEvent>((events) => this.write(events));
  private nextPruneAt = 0;
  private closed = false;

  constructor(
    private readonly host: DurableHost,
    private readonly options: ResolvedBusOptions,
    /** Whether some known subscription may match the topic. */
    private readonly matches: (topic: string) => boolean,
    /** Resolves once the store is ready to record and the subscriptions saved so far are in it. */
    private readonly ready: () => Promise<void>,
    /** Called after a recording that made tasks. */
    private readonly recorded: (events: readonly DurableEvent[]) => void,
  ) {}

  /** The bus's hook: records a publish that some durable subscription may match. */
  readonly record = (topic: string, payload: unknown, source?: string): void => {
    // A durable queue's own task events and recording failures are never recorded: a subscription on
    // `task.>` or `>` would otherwise feed itself forever.
    if (this.closed || topic.startsWith(OWN_TASK_EVENTS) || topic === 'bus.record.failed') return;
    if (!this.matches(topic)) return;
    let event: DurableEvent;
    try {
      event = this.event(topic, payload, source);
    } catch (error) {
      this.fail([topic], error);
      return;
    }
    this.batch.add(event);
  };

  /** Resolves once every publish made so far is recorded; rejects with a recording failure not reported by a flush yet. */
  async flush(): Promise<void> {
    void this.batch.flush();
    await Promise.allSettled([...this.writing]);
    const failure = this.failures[0];
    this.failures = [];
    if (failure !== undefined) throw failure;
  }

  /** `publish(topic, payload, { tx })`: records inside the caller's transaction; resolves to the tasks it made. */
  async publishIn(tx: unknown, topic: string, payload: unknown, source: string | undefined): Promise<number> {
    parseTopic(topic);
    const owner = `bus.publish('${topic}')`;
    const store = this.host.store;
    if (!isTransactionalDurableBus(store)) {
      throw invalidOptions(
        owner,
        'tx',
        `needs a store that records in the caller's transaction (postgresStore); this one is ${store.kind}`,
      );
    }
    if (typeof tx !== 'object' || tx === null || typeof (tx as { query?: unknown }).query !== 'function') {
      throw invalidOptions(owner, 'tx', "must be the caller's client inside an open transaction");
    }
    const event = this.event(topic, payload, source);
    await this.host.whenRunning(owner);
    await this.ready();
    return store.recordEventsWith(tx, [event], this.host.clock.now());
  }

  /** No more recordings; resolves once those under way are over. */
  async stop(): Promise<void> {
    this.closed = true;
    void this.batch.flush();
    await Promise.allSettled([...this.writing]);
  }

  /** Deletes logged events past the retention, at most once per `PRUNE_EVERY_MS` (at start, then after recordings). */
  async prune(store: DurableBus): Promise<void> {
    const now = this.host.clock.now();
    if (now < this.nextPruneAt) return;
    this.nextPruneAt = now + Math.min(this.options.retentionMs, PRUNE_EVERY_MS);
    // Only housekeeping: a failure is reported and tried again at the next turn, never a recording's failure.
    await store
      .pruneEvents(now - this.options.retentionMs)
      .catch((error: unknown) => this.host.report(error, 'pruning the bus event log failed'));
  }

  private event(topic: string, payload: unknown, source: string | undefined): DurableEvent {
    const time = this.host.clock.now();
    const envelope = { id: randomUUID(), type: topic, time, ...(source !== undefined && { source }), data: payload };
    return { topic, time, envelope: encodeValue(envelope, `bus.publish('${topic}'): the payload`, 'event') };
  }

  private write(events: DurableEvent[]): Promise<void> {
    const store = this.host.store as Store & DurableBus;
    const write = (async () => {
      await this.ready();
      const n = await store.recordEvents(events, this.host.clock.now());
      if (n > 0) this.recorded(events);
      await this.prune(store);
    })().catch((error: unknown) =>
      this.fail(
        events.map((e) => e.topic),
        error,
      ),
    );
    this.writing.add(write);
    void write.finally(() => this.writing.delete(write));
    return write;
  }

  private fail(types: string[], error: unknown): void {
    this.failures.push(error);
    const failure: RecordFailure = { types, error };
    const reached = this.closed ? 0 : this.host.publish('bus.record.failed', failure);
    if (reached === 0) this.host.report(error, `recording ${types.length} event(s) for durable subscriptions failed`);
  }
}

/** The prefix of the task events of durable subscriptions' queues. */
const OWN_TASK_EVENTS = `task.${durableQueueName('')}`;

/** How often the event log is pruned of events past the retention. */
const PRUNE_EVERY_MS = 60_000;
