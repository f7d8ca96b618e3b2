import { invalidOptions } from '../../core/errors.js';
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

/** Checks a saga definition; bad input throws `INVALID_OPTIONS` naming the option and value. */
export function resolveSaga(name: unknown, options: unknown): ResolvedSaga {
  const owner = `saga('${String(name)}')`;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalidOptions(
      owner,
      'name',
      `must be letters, digits, '-' or '_' (it becomes bus topics and actor ids), got ${JSON.stringify(name)}`,
    );
  }
  if (typeof options !== 'object' || options === null)
    throw invalidOptions(owner, 'options', 'must be an object with steps');
  const o = options as SagaOptions;
  if (!Array.isArray(o.steps) || o.steps.length === 0)
    throw invalidOptions(owner, 'steps', 'must be a non-empty array');
  const timeout = (option: string, v: unknown, fallback: number): number => {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw invalidOptions(owner, option, `must be a number >= 0, got ${String(v)}`);
    return v;
  };
  const stepTimeoutMs = timeout('stepTimeoutMs', o.stepTimeoutMs, 0);
  const retry = parseRetry(owner, 'retry', o.retry, noRetry);
  const compensationRetry = parseRetry(owner, 'compensationRetry', o.compensationRetry, compensationDefault);
  const shutdownGraceMs = timeout('shutdownGraceMs', o.shutdownGraceMs, 5_000);
  const seen = new Set<string>();
  const steps = o.steps.map((s, i): ResolvedStep => {
    const at = `steps[${i}]`;
    if (typeof s !== 'object' || s === null)
      throw invalidOptions(owner, at, 'must be an object { name, run, compensate? }');
    if (typeof s.name !== 'string' || !NAME.test(s.name) || RESERVED.has(s.name)) {
      throw invalidOptions(
        owner,
        `${at}.name`,
        `must be letters, digits, '-' or '_' and not one of ${[...RESERVED].join(', ')}; got ${JSON.stringify(s.name)}`,
      );
    }
    if (seen.has(s.name)) throw invalidOptions(owner, `${at}.name`, `'${s.name}' is used by another step`);
    seen.add(s.name);
    if (typeof s.run !== 'function') throw invalidOptions(owner, `${at}.run`, 'must be a function');
    if (s.compensate !== undefined && typeof s.compensate !== 'function') {
      throw invalidOptions(owner, `${at}.compensate`, 'must be a function when given');
    }
    if (s.compensateOnFailure !== undefined && typeof s.compensateOnFailure !== 'boolean') {
      throw invalidOptions(
        owner,
        `${at}.compensateOnFailure`,
        `must be a boolean, got ${String(s.compensateOnFailure)}`,
      );
    }
    if (s.compensateOnFailure && !s.compensate) {
      throw invalidOptions(owner, `${at}.compensateOnFailure`, 'needs a compensate function');
    }
    return {
      name: s.name,
      run: s.run,
      compensate: s.compensate,
      compensateOnFailure: s.compensateOnFailure === true,
      timeoutMs: timeout(`${at}.timeoutMs`, s.timeoutMs, stepTimeoutMs),
      retry: s.retry === undefined ? retry : parseRetry(owner, `${at}.retry`, s.retry, retry),
    };
  });
  const version = steps
    .map((s) => (s.compensateOnFailure ? `${s.name}++` : s.compensate ? `${s.name}+` : s.name))
    .join(',');
  return { name, steps, compensationRetry, compensationTimeoutMs: stepTimeoutMs, shutdownGraceMs, version };
}
