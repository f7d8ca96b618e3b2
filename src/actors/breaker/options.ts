import { invalidOptions, KeelError } from '../../core/errors.js';
import type { BreakerSettings } from '../../machines/breaker.js';

/** Options of `rt.breaker` (DESIGN.md, "Circuit breaker"). Durations in milliseconds. */
export interface BreakerOptions {
  /** Consecutive counted failures that open the circuit. Default 5; `Infinity` turns it off. */
  failureThreshold?: number;
  /** Failure share (0 < r <= 1) over the last `windowSize` calls that opens the circuit. Off unless given. */
  failureRate?: number;
  /** Calls the window must hold before `failureRate` can trip. Default 10 (or `windowSize` when smaller). */
  minimumCalls?: number;
  /** How many recent calls `failureRate` looks at. Default 20. */
  windowSize?: number;
  /** A call slower than this fails with `CallTimeoutError` and counts as a failure; 0 = no timeout. Default 10,000. */
  callTimeoutMs?: number;
  /** The first open period (open → halfOpen). Default 30,000. */
  resetTimeoutMs?: number;
  /** Each re-open after a failed trial multiplies the open period by this. Default 1 (no backoff). */
  backoffMultiplier?: number;
  /** The longest open period backoff can reach. Default max(resetTimeoutMs, 300,000). */
  maxResetTimeoutMs?: number;
  /** Trial calls admitted at once in halfOpen; others are refused. Default 1. */
  halfOpenMaxCalls?: number;
  /** Successful trials that close the circuit. Default 1. */
  successThreshold?: number;
  /** Errors for which this returns false pass through without counting. Default: every error counts. */
  isFailure?: (error: unknown) => boolean;
  /** Capture a stack trace on every `CircuitOpenError` (costs ~10× per rejection). Default false. */
  captureStack?: boolean;
}

/** Validated options with defaults applied. */
export interface ResolvedBreakerOptions extends BreakerSettings {
  callTimeoutMs: number;
  isFailure: ((error: unknown) => boolean) | undefined;
  captureStack: boolean;
}

const KNOWN = new Set([
  'failureThreshold',
  'failureRate',
  'minimumCalls',
  'windowSize',
  'callTimeoutMs',
  'resetTimeoutMs',
  'backoffMultiplier',
  'maxResetTimeoutMs',
  'halfOpenMaxCalls',
  'successThreshold',
  'isFailure',
  'captureStack',
]);

// Node timers overflow above 2^31-1 ms and then fire after 1 ms.
const MAX_TIMER_MS = 2_147_483_647;

/** Checks a breaker name: it becomes topic tokens (`breaker.<name>.opened`), so no wildcards and no empty tokens. */
export function checkBreakerName(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw invalidOptions('breaker', 'name', `must be a non-empty string, got ${describe(name)}`);
  }
  if (name.split('.').some((t) => t.length === 0 || t.includes('*') || t.includes('>') || /\s/.test(t))) {
    throw invalidOptions(
      'breaker',
      'name',
      `must be dot-separated tokens without spaces, '*' or '>' (it is part of bus topics), got '${name}'`,
    );
  }
}

/** Validates `options` and applies defaults; throws `INVALID_OPTIONS` naming the option and the value. */
export function resolveBreakerOptions(name: string, options: BreakerOptions = {}): ResolvedBreakerOptions {
  const owner = `breaker('${name}')`;
  if (typeof options !== 'object' || options === null) {
    throw invalidOptions(owner, 'options', `must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw invalidOptions(owner, key, `is not a breaker option (known: ${[...KNOWN].join(', ')})`);
  }
  const o = options as Record<string, unknown>;
  const int = (key: string, fallback: number, min: number, allowInfinity = false): number => {
    const v = o[key];
    if (v === undefined) return fallback;
    const ok =
      typeof v === 'number' && ((allowInfinity && v === Number.POSITIVE_INFINITY) || (Number.isInteger(v) && v >= min));
    if (!ok) {
      throw invalidOptions(
        owner,
        key,
        `must be an integer >= ${min}${allowInfinity ? ' or Infinity' : ''}, got ${describe(v)}`,
      );
    }
    return v;
  };
  const duration = (key: string, fallback: number, min: number): number => {
    const v = int(key, fallback, min);
    if (v > MAX_TIMER_MS) throw invalidOptions(owner, key, `must be at most ${MAX_TIMER_MS} ms, got ${v}`);
    return v;
  };

  const failureThreshold = int('failureThreshold', 5, 1, true);
  let failureRate: number | undefined;
  if (o.failureRate !== undefined) {
    const r = o.failureRate;
    if (typeof r !== 'number' || !(r > 0 && r <= 1)) {
      throw invalidOptions(owner, 'failureRate', `must be a number in (0, 1], got ${describe(r)}`);
    }
    failureRate = r;
  }
  const windowSize = int('windowSize', 20, 1);
  const minimumCalls = int('minimumCalls', Math.min(10, windowSize), 1);
  if (minimumCalls > windowSize) {
    throw invalidOptions(owner, 'minimumCalls', `must be <= windowSize (${windowSize}), got ${minimumCalls}`);
  }
  const callTimeoutMs = duration('callTimeoutMs', 10_000, 0);
  const resetTimeoutMs = duration('resetTimeoutMs', 30_000, 1);
  const maxResetTimeoutMs = duration('maxResetTimeoutMs', Math.max(resetTimeoutMs, 300_000), 1);
  if (maxResetTimeoutMs < resetTimeoutMs) {
    throw invalidOptions(
      owner,
      'maxResetTimeoutMs',
      `must be >= resetTimeoutMs (${resetTimeoutMs}), got ${maxResetTimeoutMs}`,
    );
  }
  const m = o.backoffMultiplier ?? 1;
  if (typeof m !== 'number' || !Number.isFinite(m) || m < 1) {
    throw invalidOptions(owner, 'backoffMultiplier', `must be a finite number >= 1, got ${describe(m)}`);
  }
  const halfOpenMaxCalls = int('halfOpenMaxCalls', 1, 1);
  const successThreshold = int('successThreshold', 1, 1);
  const isFailure = o.isFailure;
  if (isFailure !== undefined && typeof isFailure !== 'function') {
    throw invalidOptions(owner, 'isFailure', `must be a function (error) => boolean, got ${describe(isFailure)}`);
  }
  const captureStack = o.captureStack ?? false;
  if (typeof captureStack !== 'boolean') {
    throw invalidOptions(owner, 'captureStack', `must be a boolean, got ${describe(captureStack)}`);
  }
  return {
    name,
    failureThreshold,
    failureRate,
    minimumCalls,
    windowSize,
    callTimeoutMs,
    resetTimeoutMs,
    maxResetTimeoutMs,
    backoffMultiplier: m,
    halfOpenMaxCalls,
    successThreshold,
    isFailure: isFailure as ((error: unknown) => boolean) | undefined,
    captureStack,
  };
}

/** Throws `DUPLICATE_NAME` when a breaker is asked for again with settings that differ from the ones it runs with. */
export function checkSameOptions(existing: ResolvedBreakerOptions, again: ResolvedBreakerOptions): void {
  for (const key of Object.keys(existing) as Array<keyof ResolvedBreakerOptions>) {
    // Functions are compared by presence only: an inline `isFailure` is a new function on every call site.
    if (key === 'isFailure') continue;
    if (existing[key] !== again[key]) {
      throw new KeelError(
        'DUPLICATE_NAME',
        `breaker('${existing.name}') already exists with ${key} = ${String(existing[key])}; asked again with ${String(again[key])}`,
      );
    }
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null) return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return typeof v;
  }
}
