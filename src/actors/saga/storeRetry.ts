import type { Clock } from '../../core/clock.js';
import { KeelError } from '../../core/errors.js';
import { backoffMs, type RetryPolicy } from '../../core/retry.js';

/**
 * How a saga waits out a store that fails: soon at first, then at most every
 * 5 s (full jitter, so sagas paused together do not retry in lockstep), for as
 * long as the runtime runs.
 */
export const STORE_RETRY: RetryPolicy = {
  initialDelayMs: 50,
  maxDelayMs: 5_000,
  multiplier: 2,
  jitter: true,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/** Where a saga's store calls stand: the last failure while the store has not answered since. */
export interface StoreHealth {
  fault: unknown;
}

/**
 * Waits out a store that failed with `error` for the call `op`: a failure is
 * a store fault, never an outcome of the saga, so `op` is called again with
 * backoff on `clock` until the store answers (`health.fault` holds the last
 * failure meanwhile). An answer that is keel's verdict on the saga itself
 * (`SAGA_NOT_OWNED`: another runtime runs it) is passed on at once. Once
 * `signal` aborts, it makes no further call and rejects with the abort's
 * reason (a call in flight is let finish; the saga resumes from what the
 * store holds).
 */
export async function afterStoreFault<T>(
  error: unknown,
  clock: Clock,
  signal: AbortSignal,
  health: StoreHealth,
  op: () => Promise<T>,
  onFirstFault: (error: unknown) => void,
): Promise<T> {
  for (let failures = 1; ; failures++) {
    if (signal.aborted) throw signal.reason;
    if (error instanceof KeelError && error.code === 'SAGA_NOT_OWNED') throw error;
    if (health.fault === undefined) onFirstFault(error);
    health.fault = error;
    await pause(clock, backoffMs(STORE_RETRY, failures), signal);
    if (signal.aborted) throw signal.reason;
    try {
      const out = await op();
      health.fault = undefined;
      return out;
    } catch (e) {
      error = e;
    }
  }
}

/** Waits `ms` on `clock`, or less when `signal` aborts first; never rejects. */
export function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
