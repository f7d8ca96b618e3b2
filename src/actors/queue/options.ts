import { invalidOptions } from '../../core/errors.js';
import { OptionReader } from '../../core/options.js';
import { parseRetry, type RetryOptions, type RetryPolicy } from '../../core/retry.js';
import { parseTopic } from '../bus/topics.js';
import type { Task } from './engine.js';

/** Options of `rt.queue` (see DESIGN.md). */
export interface QueueOptions<P = any> {
  /** Runs each task; resolve = done, throw = retry (a `NonRetryableError` = dead). Omit for a queue that only enqueues. */
  handler?: (task: Task<P>) => unknown;
  /** Tasks run at once by this process; default 1. */
  concurrency?: number;
  retry?: RetryOptions;
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
  /** The most tasks one claim takes ahead of the workers; default 500 (the measured handler pace sizes each claim below it). */
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

/** A queue name goes into bus topics (`task.<name>.succeeded`), so it must make a valid topic. */
export function checkQueueName(name: unknown): void {
  if (typeof name !== 'string' || name === '') {
    throw invalidOptions('queue', 'name', `must be a non-empty string, got ${String(name)}`);
  }
  try {
    parseTopic(`task.${name}.succeeded`);
  } catch (error) {
    throw invalidOptions('queue', 'name', `'${name}' cannot be part of a bus topic: ${(error as Error).message}`);
  }
}

const KNOWN = [
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
];

/** A queue's options, checked, defaults filled in. */
export interface ResolvedQueueOptions {
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

/** Checks `rt.queue` options and fills in defaults; bad input throws `INVALID_OPTIONS` naming the option. */
export function resolveQueueOptions(name: string, options: QueueOptions): ResolvedQueueOptions {
  const owner = `queue('${name}')`;
  const o = new OptionReader(owner, options, KNOWN, 'a queue option');
  const handler = o.fn<(task: Task<any>) => unknown>('handler', '(task) => Promise');
  return {
    handler,
    concurrency: handler === undefined ? 0 : o.int('concurrency', 1, 1),
    retry: parseRetry(owner, 'retry', o.values.retry),
    leaseMs: o.duration('leaseMs', 30_000, 1),
    breaker: o.string('breaker', 'the name of a breaker'),
    timeoutMs: o.duration('timeoutMs', 0, 0),
    graceMs: o.duration('graceMs', 10_000, 0),
    pollMs: o.duration('pollMs', 1000, 1),
    // A cap, not a target: the prefetch window sizes each claim to what the handlers finish in 50 ms.
    batchSize: o.int('batchSize', 500, 1),
    paused: o.bool('paused', false),
  };
}
