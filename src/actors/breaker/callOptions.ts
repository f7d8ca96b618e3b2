import type { Clock } from '../../core/clock.js';
import { CircuitOpenError, KeelError, NonRetryableError } from '../../core/errors.js';
import { OptionReader } from '../../core/options.js';
import { backoffMs, parseRetry, type RetryOptions, type RetryPolicy } from '../../core/retry.js';

/** What retries need of the breaker (an interface, so this file does not import `calls.ts`). */
export interface Retried {
  readonly name: string;
  readonly clock: Clock;
  readonly state: string;
  readonly retryAfterMs: number;
  countsAsFailure(error: unknown): boolean;
  call<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>): Promise<T>;
}

/** What `breaker.call(fn, options)` accepts besides the function. */
export interface CallOptions<T> {
  /** Answers instead of the error when the call is refused or fails (after the retries). */
  fallback?: (error: unknown) => T | PromiseLike<T>;
  /**
   * Retries a failed call (the shared retry policy; here by default 3 attempts,
   * 100 ms doubling up to 10 s, full jitter). Each attempt is a call of the
   * breaker. Only errors the breaker counts as failures are retried. While the
   * circuit refuses, no attempt reaches the function: the retry waits
   * `retryAfterMs` when that is at most `maxDelayMs`, else fails at once.
   */
  retry?: RetryOptions;
}

/** The defaults of a call's `retry`: few attempts, since a caller waits on them. */
export const callRetryDefaults: RetryPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 10_000,
  multiplier: 2,
  jitter: true,
  maxAttempts: 3,
};

const CALL_OPTIONS = ['fallback', 'retry'];

/** `breaker.call(fn, options)`: the plain call, retried and with a fallback. */
export async function callWith<T>(
  b: Retried,
  fn: (signal: AbortSignal) => T | PromiseLike<T>,
  options: CallOptions<T>,
): Promise<T> {
  const owner = `breaker('${b.name}').call`;
  const r = new OptionReader(owner, options, CALL_OPTIONS, 'a call option');
  const fallback = r.fn<(error: unknown) => T | PromiseLike<T>>('fallback', '(error) => value');
  const policy =
    r.values.retry === undefined ? undefined : parseRetry(owner, 'retry', r.values.retry, callRetryDefaults);
  for (let attempt = 1; ; attempt++) {
    try {
      return await b.call(fn);
    } catch (error) {
      const wait = policy && attempt < policy.maxAttempts ? retryWait(b, error, policy, attempt) : undefined;
      if (wait !== undefined) {
        await new Promise((resolve) => b.clock.setTimeout(resolve, wait));
        continue;
      }
      if (fallback) return await fallback(error);
      throw error;
    }
  }
}

/** How long to wait before the next attempt after `error`, or undefined to stop retrying. */
function retryWait(b: Retried, error: unknown, policy: RetryPolicy, attempt: number): number | undefined {
  const refusal = refusalRetryAfter(error);
  if (refusal !== null) return refusal !== undefined && refusal <= policy.maxDelayMs ? refusal : undefined;
  if (error instanceof NonRetryableError) return undefined;
  if (error instanceof KeelError && error.code !== 'CALL_TIMEOUT') return undefined;
  if (!b.countsAsFailure(error)) return undefined;
  // The failure may just have opened the circuit: wait for it instead of backing off into a refusal.
  if (b.state !== 'closed') {
    const after = b.retryAfterMs;
    return after <= policy.maxDelayMs ? after : undefined;
  }
  return backoffMs(policy, attempt);
}

/** `retryAfterMs` of a refusal (open circuit, full bulkhead; undefined = unknown), `null` when `error` is none. */
function refusalRetryAfter(error: unknown): number | undefined | null {
  if (error instanceof CircuitOpenError) return Number.isFinite(error.retryAfterMs) ? error.retryAfterMs : undefined;
  if (error instanceof KeelError && error.code === 'BULKHEAD_FULL') {
    return (error as KeelError & { retryAfterMs?: number }).retryAfterMs;
  }
  return null;
}
