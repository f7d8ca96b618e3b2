import { invalidOptions } from '../../core/errors.js';
import { describeValue, MAX_TIMER_MS, OptionReader } from '../../core/options.js';
import { parseRetry, type RetryOptions, type RetryPolicy } from '../../core/retry.js';
import type { SagaStepKind } from '../../machines/saga.js';
import { parseSagaRetention, type ResolvedRetention, type SagaRetentionOptions } from './retention.js';

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

/** A step that calls a service: `run`, and `compensate` to undo it. */
export interface SagaRunStep<TInput = any, TResult = any> {
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

/**
 * A durable sleep: the saga waits `sleepMs` from when it reaches the step, or
 * until the epoch ms `until(ctx)` returns. The deadline is stored, so a saga
 * asleep across a restart wakes on time. Its result is undefined.
 */
export type SagaSleepStep<TInput = any> =
  | { name: string; sleepMs: number }
  | { name: string; until: (ctx: StepContext<TInput>) => number };

/**
 * Waits for `saga.signal(sagaId, waitFor, payload)`; the payload becomes the
 * step's result. A signal sent before the saga gets here is kept for it.
 * After `timeoutMs` (default none) the step fails with `STEP_TIMEOUT` and the
 * saga compensates.
 */
export interface SagaSignalStep {
  name: string;
  /** The signal's name: dot-separated tokens (`payment.confirmed`). */
  waitFor: string;
  /** How long to wait before the step fails with `STEP_TIMEOUT` (0 or absent: no limit). */
  timeoutMs?: number;
}

/**
 * Runs the saga `saga` of this runtime as a tracked child, with
 * `input(ctx)` (default the parent's input). Its id is
 * `<parentId>/<step name>`, so a resumed parent joins the same child. The
 * step's result is the child's results; a child that does not complete fails
 * the step. When the parent compensates, the completed child is undone as a
 * whole (its compensations, in reverse); a cancelled parent cancels it.
 */
export interface SagaChildStep<TInput = any> {
  name: string;
  /** The child saga's name (`rt.saga(name, ...)` in this runtime). */
  saga: string;
  /** The child's input, from the parent's context; default the parent's input. */
  input?: (ctx: StepContext<TInput>) => unknown;
}

/**
 * Steps run at once, as regions of one parallel state. When one fails, the
 * others are aborted through their signal, every branch that completed is
 * undone, then the steps before the group in reverse order. Each branch's
 * result is under its own name; the group's name (default `parallel<n>`, n
 * its 1-based position) names its state.
 */
export interface SagaParallelStep<TInput = any> {
  /** The group's state name; default `parallel<n>`. */
  name?: string;
  /** The branches: at least two call steps. */
  parallel: readonly SagaRunStep<TInput>[];
}

/**
 * One step of a saga: a call (`run`), a durable sleep (`sleepMs` / `until`),
 * a wait for a signal (`waitFor`) or a parallel group (`parallel`).
 */
export type SagaStep<TInput = any, TResult = any> =
  | SagaRunStep<TInput, TResult>
  | SagaSleepStep<TInput>
  | SagaSignalStep
  | SagaChildStep<TInput>
  | SagaParallelStep<TInput>;

/** Options of `rt.saga`. */
export interface SagaOptions<TSteps extends readonly SagaStep[] = readonly SagaStep[]> {
  steps: TSteps;
  /**
   * The definition's version. Sagas run to their end on the version they
   * started on: register a new version beside the old one
   * (`rt.saga('checkout', { version: 2, ... })`) while old runs finish. Default:
   * derived from the step names, and a stored saga whose steps changed is refused.
   */
  version?: number | string;
  /** How often a saga in flight looks for signals and cancels sent from other runtimes. Default 1,000. */
  pollMs?: number;
  /** Per-attempt timeout of every step (0 = none). Default 0. */
  stepTimeoutMs?: number;
  /** Retries of a failing step before the saga compensates. Default: no retry. */
  retry?: RetryOptions;
  /** Retries of a failing compensation before the saga ends `failed`. Default: 5 attempts, exponential from 100 ms to 5 s. */
  compensationRetry?: RetryOptions;
  /** How long `rt.stop()` waits for running sagas before interrupting them (they resume on the next start). Default 5,000. */
  shutdownGraceMs?: number;
  /**
   * How long finished runs are kept, by how they ended (default for each: the
   * newest 1,000 for 7 days). While kept, `get`/`list` show a run and
   * `execute(input, { id })` returns its stored result: this is the
   * idempotency window of an id. A background pruner deletes the rest.
   */
  retention?: SagaRetentionOptions;
}

/** A step with its policies resolved. */
export interface ResolvedStep {
  name: string;
  kind: SagaStepKind;
  /** A `run` step's call; sleeps and waits have none. */
  run: SagaRunStep['run'] | undefined;
  compensate: SagaRunStep['compensate'];
  compensateOnFailure: boolean;
  /** A run step's per-attempt timeout, a signal wait's timeout (0 = none). */
  timeoutMs: number;
  retry: RetryPolicy;
  /** A sleep's deadline, from the step's context and the time it was reached. */
  wakeAt?: (ctx: StepContext, now: number) => number;
  /** A sleep of a fixed `sleepMs` (it cannot fail), not `until`. */
  fixed?: boolean;
  /** The signal a `signal` step waits for. */
  waitFor?: string;
  /** A `child` step's saga name, and its input from the parent's context. */
  child?: { saga: string; input: (ctx: StepContext) => unknown };
  /** A parallel group's branches (the group itself runs nothing). */
  parallel?: ResolvedStep[];
  /** The group a parallel branch belongs to. */
  branchOf?: string;
}

/** A saga definition with defaults filled in and everything checked. */
export interface ResolvedSaga {
  name: string;
  steps: ResolvedStep[];
  compensationRetry: RetryPolicy;
  compensationTimeoutMs: number;
  shutdownGraceMs: number;
  pollMs: number;
  retention: ResolvedRetention;
  /** The given version, or one derived from the step names and their undo-ability (changes when they do). */
  version: string;
  /** True when the user named the version. */
  versioned: boolean;
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
const RESERVED = new Set(['running', 'compensating', 'cancelling', 'completed', 'compensated', 'cancelled', 'failed']);
/** A signal name: dot-separated tokens, like a bus topic without wildcards. */
const SIGNAL = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

const SAGA_OPTIONS = [
  'steps',
  'version',
  'stepTimeoutMs',
  'retry',
  'compensationRetry',
  'shutdownGraceMs',
  'pollMs',
  'retention',
] as const;
/** The options of each kind of step; the kind is told by which of `run`, `sleepMs`/`until`, `waitFor` it has. */
const STEP_OPTIONS: Record<SagaStepKind, readonly string[]> = {
  run: ['name', 'run', 'compensate', 'timeoutMs', 'retry', 'compensateOnFailure'],
  sleep: ['name', 'sleepMs', 'until'],
  signal: ['name', 'waitFor', 'timeoutMs'],
  child: ['name', 'saga', 'input'],
};

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

/** A finite number of milliseconds >= 0 with no timer bound: a durable wait longer than a timer is re-armed. */
function longDuration(owner: string, path: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidOptions(owner, path, `must be a finite number >= 0, got ${describeValue(value)}`);
  }
  return value;
}

/** Which kind of step `s` is, or why it is none. */
function kindOf(owner: string, at: string, s: Record<string, unknown>): SagaStepKind {
  const kinds: SagaStepKind[] = [];
  if ('run' in s) kinds.push('run');
  if ('sleepMs' in s || 'until' in s) kinds.push('sleep');
  if ('waitFor' in s) kinds.push('signal');
  if ('saga' in s) kinds.push('child');
  if (kinds.length === 1) return kinds[0] as SagaStepKind;
  if (kinds.length === 0) {
    throw invalidOptions(
      owner,
      `${at}.run`,
      `must be a function (or give the step sleepMs, until, waitFor or saga), got ${describeValue(s.run)}`,
    );
  }
  throw invalidOptions(
    owner,
    at,
    `has ${kinds.join(' and ')} options at once; a step takes one of run, sleepMs/until, waitFor, saga`,
  );
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
  const pollMs = o.duration('pollMs', 1_000, 1);
  const retention = parseSagaRetention(owner, o.values.retention);
  const given = o.values.version;
  if (
    given !== undefined &&
    !(typeof given === 'string' && given !== '') &&
    !(typeof given === 'number' && Number.isFinite(given))
  ) {
    throw invalidOptions(
      owner,
      'version',
      `must be a non-empty string or a finite number, got ${describeValue(given)}`,
    );
  }
  const seen = new Set<string>();
  const readStep = (raw: unknown, at: string, branchOf: string | undefined): ResolvedStep => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw invalidOptions(owner, at, `must be an object { name, run, compensate? }, got ${describeValue(raw)}`);
    // Steps are read here, not with OptionReader, so messages name the option by its path (`steps[1].timeoutMs`).
    const s = raw as Record<string, unknown>;
    const kind = kindOf(owner, at, s);
    if (branchOf !== undefined && kind !== 'run') {
      throw invalidOptions(
        owner,
        at,
        `is a ${kind} step; a parallel branch must be a run step { name, run, compensate? }`,
      );
    }
    const known = STEP_OPTIONS[kind];
    for (const key of Object.keys(s)) {
      if (!known.includes(key)) {
        throw invalidOptions(owner, `${at}.${key}`, `is not a step option (a ${kind} step takes: ${known.join(', ')})`);
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
    if (kind === 'sleep') return sleepStep(owner, at, stepName, s);
    if (kind === 'signal') return signalStep(owner, at, stepName, s);
    if (kind === 'child') return childStep(owner, at, stepName, s);
    if (typeof s.run !== 'function')
      throw invalidOptions(owner, `${at}.run`, `must be a function, got ${describeValue(s.run)}`);
    if (s.compensate !== undefined && typeof s.compensate !== 'function') {
      throw invalidOptions(
        owner,
        `${at}.compensate`,
        `must be a function when given, got ${describeValue(s.compensate)}`,
      );
    }
    const run = s.run as SagaRunStep['run'];
    const compensate = s.compensate as SagaRunStep['compensate'];
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
      kind,
      ...(branchOf !== undefined && { branchOf }),
      run,
      compensate,
      compensateOnFailure: compensateOnFailure === true,
      timeoutMs: durationAt(owner, `${at}.timeoutMs`, s.timeoutMs, stepTimeoutMs),
      retry:
        s.retry === undefined
          ? retry
          : boundedRetry(owner, `${at}.retry`, parseRetry(owner, `${at}.retry`, s.retry, retry)),
    };
  };
  const readGroup = (g: Record<string, unknown>, at: string, index: number): ResolvedStep => {
    for (const key of Object.keys(g)) {
      if (key !== 'name' && key !== 'parallel') {
        throw invalidOptions(owner, `${at}.${key}`, 'is not an option of a parallel group (it takes: name, parallel)');
      }
    }
    const groupName = g.name === undefined ? `parallel${index + 1}` : g.name;
    if (typeof groupName !== 'string' || !NAME.test(groupName) || RESERVED.has(groupName)) {
      throw invalidOptions(owner, `${at}.name`, `must be letters, digits, '-' or '_', got ${describeValue(groupName)}`);
    }
    if (seen.has(groupName)) throw invalidOptions(owner, `${at}.name`, `'${groupName}' is used by another step`);
    seen.add(groupName);
    const list = g.parallel;
    if (!Array.isArray(list) || list.length < 2) {
      throw invalidOptions(
        owner,
        `${at}.parallel`,
        `must be an array of at least two steps, got ${describeValue(list)}`,
      );
    }
    const branches = list.map((b, j) => readStep(b, `${at}.parallel[${j}]`, groupName));
    return { ...waitingStep(groupName, 'run', 0), parallel: branches };
  };
  const steps = list.map((raw: unknown, i): ResolvedStep => {
    const at = `steps[${i}]`;
    if (typeof raw === 'object' && raw !== null && 'parallel' in raw) {
      return readGroup(raw as Record<string, unknown>, at, i);
    }
    return readStep(raw, at, undefined);
  });
  const shapeOf = (s: ResolvedStep): string =>
    s.parallel
      ? `${s.name}(${s.parallel.map(shapeOf).join(',')})`
      : s.kind === 'sleep'
        ? `${s.name}~`
        : s.kind === 'signal'
          ? `${s.name}?${s.waitFor}`
          : s.kind === 'child'
            ? `${s.name}>${s.child?.saga}`
            : s.compensateOnFailure
              ? `${s.name}++`
              : s.compensate
                ? `${s.name}+`
                : s.name;
  const shape = steps.map(shapeOf).join(',');
  return {
    name,
    steps,
    compensationRetry,
    compensationTimeoutMs: stepTimeoutMs,
    shutdownGraceMs,
    pollMs,
    retention,
    version: given === undefined ? shape : String(given),
    versioned: given !== undefined,
  };
}

/** A step that only waits: nothing to undo, no retries. */
function waitingStep(name: string, kind: SagaStepKind, timeoutMs: number): ResolvedStep {
  return { name, kind, run: undefined, compensate: undefined, compensateOnFailure: false, timeoutMs, retry: noRetry };
}

function sleepStep(owner: string, at: string, name: string, s: Record<string, unknown>): ResolvedStep {
  if ('sleepMs' in s && 'until' in s) throw invalidOptions(owner, at, 'has both sleepMs and until; give one');
  if ('until' in s) {
    const until = s.until;
    if (typeof until !== 'function') {
      throw invalidOptions(owner, `${at}.until`, `must be a function (ctx) => epoch ms, got ${describeValue(until)}`);
    }
    return { ...waitingStep(name, 'sleep', 0), wakeAt: (ctx) => (until as (c: StepContext) => number)(ctx) };
  }
  const sleepMs = longDuration(owner, `${at}.sleepMs`, s.sleepMs, 0);
  return { ...waitingStep(name, 'sleep', 0), wakeAt: (_ctx, now) => now + sleepMs, fixed: true };
}

function childStep(owner: string, at: string, name: string, s: Record<string, unknown>): ResolvedStep {
  if (typeof s.saga !== 'string' || !NAME.test(s.saga)) {
    throw invalidOptions(
      owner,
      `${at}.saga`,
      `must be the name of a saga of this runtime, got ${describeValue(s.saga)}`,
    );
  }
  if (s.input !== undefined && typeof s.input !== 'function') {
    throw invalidOptions(
      owner,
      `${at}.input`,
      `must be a function (ctx) => the child's input, got ${describeValue(s.input)}`,
    );
  }
  const input = (s.input as ((ctx: StepContext) => unknown) | undefined) ?? ((ctx: StepContext) => ctx.input);
  // Undone as a whole: compensating the parent undoes the child's completed steps (see the runner).
  return { ...waitingStep(name, 'child', 0), child: { saga: s.saga, input }, compensate: () => undefined };
}

function signalStep(owner: string, at: string, name: string, s: Record<string, unknown>): ResolvedStep {
  const waitFor = s.waitFor;
  if (typeof waitFor !== 'string' || !SIGNAL.test(waitFor)) {
    throw invalidOptions(
      owner,
      `${at}.waitFor`,
      `must be a signal name (dot-separated letters, digits, '-' or '_', e.g. 'payment.confirmed'), got ${describeValue(waitFor)}`,
    );
  }
  return { ...waitingStep(name, 'signal', longDuration(owner, `${at}.timeoutMs`, s.timeoutMs, 0)), waitFor };
}
