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

/** A signal and a promise that rejects with its reason once it aborts: one listener for every wait it cuts short. */
export interface Interruption {
  readonly signal: AbortSignal;
  readonly aborted: Promise<never>;
}

/** The interruption of `controller`. */
export function interruption(controller: AbortController): Interruption {
  const { signal } = controller;
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  aborted.catch(() => {});
  return { signal, aborted };
}

/**
 * Calls `op` until the store answers: a failure is a store fault, never an
 * outcome of the saga, so it is retried with backoff on `clock` (`health.fault`
 * holds it meanwhile). An answer that is keel's verdict on the saga itself
 * (`SAGA_NOT_OWNED`: another runtime runs it) is returned to the caller as a
 * rejection at once. When `stop` aborts first, it rejects with the abort's
 * reason, and a call in flight is abandoned (the saga resumes from what the
 * store holds).
 */
export async function untilStored<T>(
  clock: Clock,
  stop: Interruption,
  health: StoreHealth,
  op: () => Promise<T>,
  onFirstFault: (error: unknown) => void,
): Promise<T> {
  for (let failures = 0; ; ) {
    if (stop.signal.aborted) throw stop.signal.reason;
    try {
      const out = await Promise.race([op(), stop.aborted]);
      health.fault = undefined;
      return out;
    } catch (error) {
      if (stop.signal.aborted) throw stop.signal.reason;
      if (error instanceof KeelError && error.code === 'SAGA_NOT_OWNED') throw error;
      if (health.fault === undefined) onFirstFault(error);
      health.fault = error;
      failures++;
      let timer: unknown;
      await Promise.race([
        new Promise<void>((resolve) => {
          timer = clock.setTimeout(() => resolve(), backoffMs(STORE_RETRY, failures));
        }),
        stop.aborted,
      ]).catch(() => clock.clearTimeout(timer));
    }
  }
}
