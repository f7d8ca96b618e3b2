import { invalidOptions } from '../../core/errors.js';
import { describeValue, MAX_TIMER_MS, OptionReader } from '../../core/options.js';
import { parseRetry, type RetryOptions, type RetryPolicy } from '../../core/retry.js';
import type { ClaimLimits, RateLimit, Retention } from '../../stores/store.js';
import { parseTopic } from '../bus/topics.js';
import type { Task } from './engine.js';
import { parseRetention, type RetentionOptions } from './retention.js';

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
  /**
   * What is kept of finished tasks (for `get`/`list`); the rest is pruned in
   * the background. Defaults (`DEFAULT_RETENTION`): succeeded the last 1,000
   * for a day, dead the last 10,000 for a week, cancelled the last 1,000 for a day.
   */
  retention?: RetentionOptions;
  /** Tasks of this queue running at once in the whole fleet (every process sharing the store). */
  globalConcurrency?: number;
  /** Tasks of this queue started in any `perMs` window in the whole fleet. */
  rateLimit?: RateLimit;
  /** Tasks of one group running at once in the whole fleet; 1 runs one entity's tasks one after another, in order. */
  groupConcurrency?: number;
  /** Tasks of one group started in any `perMs` window in the whole fleet. */
  groupRateLimit?: RateLimit;
}

/** Options of one enqueue. */
export interface EnqueueOptions {
  /** Dedup key: while a task with this key is pending, active or retrying, no second one is added. */
  key?: string;
  /**
   * What an enqueue whose key is held does: `keep` (default) adds nothing
   * (`deduplicated: true`); `replace` gives a PENDING holder this payload
   * (`replaced: true`, the holder's id and place in line). A holder that is
   * active or retrying has started and is not replaced: `deduplicated: true`.
   */
  onDuplicate?: 'keep' | 'replace';
  /** Not run before this many ms from now. */
  delayMs?: number;
  /**
   * The caller's open transaction (for `postgresStore`, a `pg` client after
   * `BEGIN`): the task is written in it, so it commits or rolls back with the
   * caller's own writes. Workers see it once the caller commits.
   */
  tx?: unknown;
  /** Lower runs first; an integer, default 0, negative allowed. FIFO within one priority. */
  priority?: number;
  /** The tenant or entity the task belongs to: groups take turns, and the group limits count per group. */
  group?: string;
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
  'retention',
  'globalConcurrency',
  'rateLimit',
  'groupConcurrency',
  'groupRateLimit',
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
  retention: Retention;
  /** What every claim enforces; undefined when the queue has no limits. */
  limits: ClaimLimits | undefined;
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
    retention: parseRetention(owner, o.values.retention),
    limits: claimLimits(owner, o),
  };
}

/** The fleet-wide limits among the options, checked; undefined when there are none. */
function claimLimits(owner: string, o: OptionReader): ClaimLimits | undefined {
  const limits: ClaimLimits = {};
  // Integers: the stores count in whole tasks and whole milliseconds.
  const gc = o.int('globalConcurrency', 0, 1);
  if (gc > 0) limits.globalConcurrency = gc;
  const ggc = o.int('groupConcurrency', 0, 1);
  if (ggc > 0) limits.groupConcurrency = ggc;
  const rate = rateLimit(owner, 'rateLimit', o.values.rateLimit);
  if (rate) limits.rateLimit = rate;
  const groupRate = rateLimit(owner, 'groupRateLimit', o.values.groupRateLimit);
  if (groupRate) limits.groupRateLimit = groupRate;
  return Object.keys(limits).length > 0 ? limits : undefined;
}

/** `{ max, perMs }`, both integers >= 1 (perMs at most a timer's range), or undefined when absent. */
function rateLimit(owner: string, name: string, value: unknown): RateLimit | undefined {
  if (value === undefined) return undefined;
  const r = new OptionReader(owner, value, ['max', 'perMs'], `a ${name} option`, name);
  const max = r.values.max;
  const perMs = r.values.perMs;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 1_000_000) {
    throw invalidOptions(owner, `${name}.max`, `must be an integer from 1 to 1,000,000, got ${describeValue(max)}`);
  }
  if (typeof perMs !== 'number' || !Number.isInteger(perMs) || perMs < 1 || perMs > MAX_TIMER_MS) {
    throw invalidOptions(
      owner,
      `${name}.perMs`,
      `must be an integer from 1 to ${MAX_TIMER_MS}, got ${describeValue(perMs)}`,
    );
  }
  return { max, perMs };
}
