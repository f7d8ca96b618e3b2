import type { Clock } from '../../runtime/clock.js';
import { KeelError, NonRetryableError } from '../../runtime/errors.js';
import { backoffMs, type RetryPolicy } from '../queue/backoff.js';

/** Where a retried call stands; the caller persists it before every wait. */
export interface AttemptState {
  attempt: number;
  notBefore: number | undefined;
}

/** How to run one step or compensation. */
export interface AttemptPlan<T> {
  clock: Clock;
  policy: RetryPolicy;
  /** Per attempt; 0 = none. */
  timeoutMs: number;
  /** Aborted when the saga is interrupted: no further attempt, no wait. */
  signal: AbortSignal;
  state: AttemptState;
  /** Called before each backoff wait, with the state already moved to the next attempt. */
  persist: (state: AttemptState) => Promise<void>;
  call: (attempt: number, signal: AbortSignal) => T | Promise<T>;
  /** For messages: `step 'createOrder'`. */
  what: string;
}

/**
 * Runs `call` until it succeeds, the policy's attempts are spent, or it throws
 * a `NonRetryableError`. Timeouts abort the attempt's signal and count as a
 * failure. Waits run on the runtime's clock and start from `state.notBefore`,
 * so a resumed saga honours a backoff it was in when it stopped.
 */
export async function runAttempts<T>(plan: AttemptPlan<T>): Promise<T> {
  const { clock, policy, state } = plan;
  for (;;) {
    if (state.notBefore !== undefined) {
      const wait = state.notBefore - clock.now();
      if (wait > 0) await sleep(clock, wait, plan.signal);
    }
    if (plan.signal.aborted) throw plan.signal.reason;
    try {
      return await attemptOnce(plan, state.attempt);
    } catch (error) {
      if (plan.signal.aborted || error instanceof NonRetryableError || state.attempt >= policy.maxAttempts) throw error;
      state.notBefore = clock.now() + backoffMs(policy, state.attempt);
      state.attempt += 1;
      await plan.persist(state);
    }
  }
}

function attemptOnce<T>(plan: AttemptPlan<T>, attempt: number): Promise<T> {
  // Without a timeout the attempt's signal is the saga's: no controller or listener per attempt.
  if (plan.timeoutMs <= 0) return (async () => plan.call(attempt, plan.signal))();
  const controller = new AbortController();
  const onAbort = () => controller.abort(plan.signal.reason);
  plan.signal.addEventListener('abort', onAbort, { once: true });
  let timer: unknown;
  const timedOut = new Promise<never>((_, reject) => {
    timer = plan.clock.setTimeout(() => {
      const error = new KeelError(
        'STEP_TIMEOUT',
        `${plan.what} timed out after ${plan.timeoutMs} ms (attempt ${attempt})`,
      );
      controller.abort(error);
      reject(error);
    }, plan.timeoutMs);
  });
  const run = (async () => plan.call(attempt, controller.signal))();
  return Promise.race([run, timedOut]).finally(() => {
    plan.clock.clearTimeout(timer);
    plan.signal.removeEventListener('abort', onAbort);
  });
}

/** Waits `ms` on `clock`; rejects with the signal's reason when aborted first. */
function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
