import { KeelError } from '../../core/errors.js';
import type { ResolvedBreakerOptions } from './options.js';

/** A call waiting for a bulkhead slot. */
interface Waiting {
  fn: (signal: AbortSignal) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The calls waiting for a bulkhead slot of one breaker, oldest first. A
 * refusal of the bulkhead changes no mode, so it never reaches the machine.
 */
export class Bulkhead {
  private items: Waiting[] = [];
  private head = 0;

  /** Calls waiting. */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Queues `fn`; the promise settles with its call once a slot frees. */
  wait(fn: (signal: AbortSignal) => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => this.items.push({ fn, resolve, reject }));
  }

  /** The longest-waiting call, if any. */
  take(): Waiting | undefined {
    if (this.head >= this.items.length) return undefined;
    const next = this.items[this.head++];
    // Compact now and then, so the array does not grow with every call ever queued.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return next;
  }

  /** Rejects every waiting call (the breaker stopped). */
  refuseAll(error: () => unknown): void {
    for (let w = this.take(); w; w = this.take()) w.reject(error());
  }
}

/**
 * `KeelError` `BULKHEAD_FULL`: `maxConcurrent` calls run and `maxQueued` wait.
 * With a call timeout, `retryAfterMs` says when the earliest running call ends
 * at the latest (`earliestDeadline`); without one nothing bounds it and it is absent.
 */
export function bulkheadFull(
  name: string,
  o: Pick<ResolvedBreakerOptions, 'maxConcurrent' | 'maxQueued'>,
  earliestDeadline: number | undefined,
  now: number,
): KeelError & { breaker: string; retryAfterMs?: number } {
  const retryAfterMs = earliestDeadline === undefined ? undefined : Math.max(1, earliestDeadline - now);
  const error = new KeelError(
    'BULKHEAD_FULL',
    `breaker('${name}'): ${o.maxConcurrent} calls running and ${o.maxQueued} waiting; call refused` +
      (retryAfterMs === undefined ? '' : `, retry after ${retryAfterMs} ms`),
  ) as KeelError & { breaker: string; retryAfterMs?: number };
  error.breaker = name;
  if (retryAfterMs !== undefined) error.retryAfterMs = retryAfterMs;
  return error;
}
