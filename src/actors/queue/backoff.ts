/** The retry policy of a queue, defaults filled in. */
export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Full jitter: a uniform delay between 0 and the exponential cap. */
  jitter: boolean;
  maxAttempts: number;
}

export const defaultRetry: RetryPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: true,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/**
 * The wait before the attempt after `attempt` (1-based) failed: exponential
 * `initialDelayMs * multiplier^(attempt-1)`, capped at `maxDelayMs`; with
 * jitter a uniform draw in [0, that] (full jitter spreads a crowd of retries
 * instead of moving it in lockstep).
 */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  // 0 * Infinity is NaN: with no initial delay there is nothing to grow, however many attempts.
  const exp = policy.initialDelayMs === 0 ? 0 : policy.initialDelayMs * policy.multiplier ** Math.max(0, attempt - 1);
  const cap = Math.min(policy.maxDelayMs, Number.isFinite(exp) ? exp : policy.maxDelayMs);
  return policy.jitter ? Math.floor(random() * (cap + 1)) : cap;
}
