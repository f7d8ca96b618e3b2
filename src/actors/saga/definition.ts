import { invalidOptions } from '../../core/errors.js';
import { describeValue, MAX_TIMER_MS, OptionReader } from '../../core/options.js';
import { parseRetry, type RetryOptions, type RetryPolicy } from '../../core/retry.js';

/** What a step (or its compensation) is given. */
export interface StepContext<TInput = any> {
  sagaId: string;
  input: TInput;
  /** What the steps before returned, by step name. */
  results: Record<string, any>;
  /** 1 on the first try; counts retries of this step (or of its compensation). */
  attempt: number;
  /** Aborted when the step times out or the runtime stops. */
  signal: AbortSignal;
  /** `<sagaId>:<step>` (compensations: `<sagaId>:<step>:compensate`): stable across retries and restarts. */
  idempotencyKey: string;
}

/** One step of a saga. */
export interface SagaStep<TInput = any, TResult = any> {
  name: string;
  run: (ctx: StepContext<TInput>) => TResult | Promise<TResult>;
  /** Undoes `run`; called only when `run` completed and a later step failed. */
  compensate?: (ctx: StepContext<TInput>) => unknown;
  /** Per-attempt timeout of this step; default the saga's `stepTimeoutMs`. */
  timeoutMs?: number;
  /** Retries of this step; default the saga's `retry`. */
  retry?: RetryOptions;
  /**
   * Also run `compensate` when this step itself fails (after its retries), for
   * calls whose effect may land although the call failed, such as a timeout.
   * Default false: only completed steps are undone.
   */
  compensateOnFailure?: boolean;
}

/** Options of `rt.saga`. */
export interface SagaOptions<TSteps extends readonly SagaStep[] = readonly SagaStep[]> {
  steps: TSteps;
  /** Per-attempt timeout of every step (0 = none). Default 0. */
  stepTimeoutMs?: number;
  /** Retries of a failing step before the saga compensates. Default: no retry. */
  retry?: RetryOptions;
  /** Retries of a failing compensation before the saga ends `failed`. Default: 5 attempts, exponential from 100 ms to 5 s. */
  compensationRetry?: RetryOptions;
  /** How long `rt.stop()` waits for running sagas before interrupting them (they resume on the next start). Default 5,000. */
  shutdownGraceMs?: number;
}

/** A step with its policies resolved. */
export interface ResolvedStep {
  name: string;
  run: SagaStep['run'];
  compensate: SagaStep['compensate'];
  compensateOnFailure: boolean;
  timeoutMs: number;
  retry: RetryPolicy;
}

/** A saga definition with defaults filled in and everything checked. */
export interface ResolvedSaga {
  name: string;
  steps: ResolvedStep[];
  compensationRetry: RetryPolicy;
  compensationTimeoutMs: number;
  shutdownGraceMs: number;
  /** Changes when the step names or their undo-ability change. */
  version: string;
}

const noRetry: RetryPolicy = { initialDelayMs: 100, maxDelayMs: 10_000, multiplier: 2, jitter: true, maxAttempts: 1 };
const compensationDefault: RetryPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  multiplier: 2,
  jitter: true,
  maxAttempts: 5,
};
const NAME = /^[A-Za-z0-9_-]+$/;
const RESERVED = new Set(['running', 'compensating', 'completed', 'compensated', 'failed']);

const SAGA_OPTIONS = ['steps', 'stepTimeoutMs', 'retry', 'compensationRetry', 'shutdownGraceMs'] as const;
const STEP_OPTIONS = ['name', 'run', 'compensate', 'timeoutMs', 'retry', 'compensateOnFailure'] as const;

/**
 * A retry policy whose delays a timer can hold: a longer one would be a
 * `notBefore` deadline past anything a store keeps and a wait nobody means.
 */
function boundedRetry(owner: string, option: string, policy: RetryPolicy): RetryPolicy {
  for (const field of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (policy[field] > MAX_TIMER_MS) {
      throw invalidOptions(owner, `${option}.${field}`, `must be at most ${MAX_TIMER_MS} ms, got ${policy[field]}`);
    }
  }
  return policy;
}

/** A duration option named by its path (`steps[1].timeoutMs`), read as `OptionReader.duration` reads one. */
function durationAt(owner: string, path: string, value: unknown, fallback: number): number {
  return new OptionReader(owner, { [path]: value }, [path]).duration(path, fallback, 0);
}

/** Checks a saga definition; bad input throws `INVALID_OPTIONS` naming the option and value. */
export function resolveSaga(name: unknown, options: unknown): ResolvedSaga {
  const owner = `saga('${String(name)}')`;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalidOptions(
      owner,
      'name',
      `must be letters, digits, '-' or '_' (it becomes bus topics and actor ids), got ${describeValue(name)}`,
    );
  }
  const o = new OptionReader(owner, options, SAGA_OPTIONS, 'a saga option');
  const list = o.values.steps as unknown[];
  if (!Array.isArray(list) || list.length === 0) throw invalidOptions(owner, 'steps', 'must be a non-empty array');
  // Durations are bounded by what a timer holds (24.8 days): a longer step timeout or grace is a mistake, not a plan.
  const stepTimeoutMs = o.duration('stepTimeoutMs', 0, 0);
  const retry = boundedRetry(owner, 'retry', parseRetry(owner, 'retry', o.values.retry, noRetry));
  const compensationRetry = boundedRetry(
    owner,
    'compensationRetry',
    parseRetry(owner, 'compensationRetry', o.values.compensationRetry, compensationDefault),
  );
  const shutdownGraceMs = o.duration('shutdownGraceMs', 5_000, 0);
  const seen = new Set<string>();
  const steps = list.map((raw: unknown, i): ResolvedStep => {
    const at = `steps[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw invalidOptions(owner, at, `must be an object { name, run, compensate? }, got ${describeValue(raw)}`);
    // Steps are read here, not with OptionReader, so messages name the option by its path (`steps[1].timeoutMs`).
    const s = raw as Record<string, unknown>;
    for (const key of Object.keys(s)) {
      if (!(STEP_OPTIONS as readonly string[]).includes(key)) {
        throw invalidOptions(owner, `${at}.${key}`, `is not a step option (known: ${STEP_OPTIONS.join(', ')})`);
      }
    }
    const stepName = s.name;
    if (typeof stepName !== 'string' || !NAME.test(stepName) || RESERVED.has(stepName)) {
      throw invalidOptions(
        owner,
        `${at}.name`,
        `must be letters, digits, '-' or '_' and not one of ${[...RESERVED].join(', ')}; got ${describeValue(stepName)}`,
      );
    }
    if (seen.has(stepName)) throw invalidOptions(owner, `${at}.name`, `'${stepName}' is used by another step`);
    seen.add(stepName);
    if (typeof s.run !== 'function')
      throw invalidOptions(owner, `${at}.run`, `must be a function, got ${describeValue(s.run)}`);
    if (s.compensate !== undefined && typeof s.compensate !== 'function') {
      throw invalidOptions(
        owner,
        `${at}.compensate`,
        `must be a function when given, got ${describeValue(s.compensate)}`,
      );
    }
    const run = s.run as SagaStep['run'];
    const compensate = s.compensate as SagaStep['compensate'];
    const compensateOnFailure = s.compensateOnFailure;
    if (compensateOnFailure !== undefined && typeof compensateOnFailure !== 'boolean') {
      throw invalidOptions(
        owner,
        `${at}.compensateOnFailure`,
        `must be a boolean, got ${describeValue(compensateOnFailure)}`,
      );
    }
    if (compensateOnFailure && !compensate) {
      throw invalidOptions(owner, `${at}.compensateOnFailure`, 'needs a compensate function');
    }
    return {
      name: stepName,
      run,
      compensate,
      compensateOnFailure: compensateOnFailure === true,
      timeoutMs: durationAt(owner, `${at}.timeoutMs`, s.timeoutMs, stepTimeoutMs),
      retry:
        s.retry === undefined
          ? retry
          : boundedRetry(owner, `${at}.retry`, parseRetry(owner, `${at}.retry`, s.retry, retry)),
    };
  });
  const version = steps
    .map((s) => (s.compensateOnFailure ? `${s.name}++` : s.compensate ? `${s.name}+` : s.name))
    .join(',');
  return { name, steps, compensationRetry, compensationTimeoutMs: stepTimeoutMs, shutdownGraceMs, version };
}
