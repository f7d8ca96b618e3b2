import type { RetryOptions } from '../../core/retry.js';
import type { Host } from '../host.js';
import type { BusEvent } from './event.js';

/** What a durable handler gets besides the payload and the envelope: the attempt, and a signal that aborts it. */
export interface Delivery {
  /** The id of the task that carries this event on the subscription's queue `bus:<name>`. */
  readonly taskId: string;
  /** 1 on the first delivery; more after a failure or a crash (at least once). */
  readonly attempt: number;
  /** Aborts on a timeout, a lost lease or the runtime's stop. */
  readonly signal: AbortSignal;
}

/** A durable subscriber; throwing or rejecting retries the event with backoff, then dead-letters it. */
export type DurableHandler<TData = any> = (
  payload: TData,
  event: BusEvent<string, TData>,
  delivery: Delivery,
) => unknown;

/** A task of a durable subscription's queue, as its handler sees it. */
export interface DurableTask {
  id: string;
  payload: unknown;
  attempt: number;
  signal: AbortSignal;
}

/** The queue that carries one durable subscription, as the runtime hands it out. */
export interface DurableQueue {
  pause(): void;
  resume(): void;
  /** Wakes the workers: tasks were written to the store by another path. */
  notify(): void;
}

/** Options of the queue behind a durable subscription. */
export interface DurableQueueOptions {
  handler: (task: DurableTask) => unknown;
  retry?: RetryOptions;
  breaker?: string;
  concurrency?: number;
  leaseMs?: number;
  groupConcurrency?: number;
}

/** What durable subscriptions need of the runtime. */
export type DurableHost = Pick<Host, 'store' | 'clock' | 'report' | 'whenRunning' | 'publish'> & {
  readonly state: Host['state'];
  /** The runtime's queue `name`, created with `options` (`rt.queue`). */
  queue(name: string, options: DurableQueueOptions): DurableQueue;
};

/** What a failed recording publishes on `bus.record.failed`. */
export interface RecordFailure {
  /** The topics of the events that were not recorded. */
  types: string[];
  error: unknown;
}
