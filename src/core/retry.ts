import type { Clock } from './clock.js';
import { invalidOptions, KeelError, NonRetryableError } from './errors.js';

/** A retry policy (of a queue's tasks, a saga's steps and compensations), defaults filled in. */
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

/** What a user passes as a retry policy; every field optional. */
export type RetryOptions = Partial<RetryPolicy>;

/**
 * Checks a user's retry options and fills in `defaults`; a bad field throws
 * `INVALID_OPTIONS` naming `<option>.<field>` and the value.
 */
export function parseRetry(
  owner: string,
  option: string,
  value: unknown,
  defaults: RetryPolicy = defaultRetry,
): RetryPolicy {
  if (value === undefined) return { ...defaults };
  if (typeof value !== 'object' || value === null) {
    throw invalidOptions(owner, option, `must be an object, got ${String(value)}`);
  }
  const r = value as Record<string, unknown>;
  // A misspelt field would otherwise be ignored silently.
  for (const key of Object.keys(r)) {
    // Own keys only: `constructor` or `toString` is `in` every object.
    if (!Object.hasOwn(defaults, key)) {
      throw invalidOptions(
        owner,
        `${option}.${key}`,
        `is not a retry option (known: ${Object.keys(defaults).join(', ')})`,
      );
    }
  }
  const number = (field: keyof RetryPolicy, min: number, integer: boolean, infinite: boolean): number => {
    const v = r[field];
    if (v === undefined) return defaults[field] as number;
    const ok =
      typeof v === 'number' &&
      !Number.isNaN(v) &&
      v >= min &&
      (Number.isFinite(v) ? !integer || Number.isInteger(v) : infinite && v === Number.POSITIVE_INFINITY);
    if (!ok) {
      const kind = `${integer ? 'an integer' : 'a number'} >= ${min}${infinite ? ' (or Infinity)' : ''}`;
      throw invalidOptions(owner, `${option}.${field}`, `must be ${kind}, got ${String(v)}`);
    }
    return v as number;
  };
  if (r.jitter !== undefined && typeof r.jitter !== 'boolean') {
    throw invalidOptions(owner, `${option}.jitter`, `must be a boolean, got ${String(r.jitter)}`);
  }
  return {
    initialDelayMs: number('initialDelayMs', 0, false, false),
    maxDelayMs: number('maxDelayMs', 0, false, false),
    multiplier: number('multiplier', 1, false, false),
    jitter: (r.jitter as boolean | undefined) ?? defaults.jitter,
    maxAttempts: number('maxAttempts', 1, true, true),
  };
}

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
