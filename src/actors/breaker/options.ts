import { invalidOptions, KeelError } from '../../core/errors.js';
import { describeValue, OptionReader } from '../../core/options.js';
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
  /**
   * `'process'` (default): this runtime's own breaker. `'fleet'`: one breaker for
   * every process sharing the store (Postgres only): failures are counted for
   * the fleet, an open circuit refuses everywhere, and the half-open trials are
   * the fleet's (`halfOpenMaxCalls` for all processes together).
   */
  scope?: 'process' | 'fleet';
  /**
   * Fleet scope: the longest a counted outcome waits before it reaches the
   * fleet's counts, and how often the fleet is read while notifications are
   * down. Default 100.
   */
  fleetSyncMs?: number;
  /** A successful call at least this slow counts as slow (`stats.slowCalls`). Off unless given. */
  slowCallMs?: number;
  /** Slow-call share (0 < r <= 1) over the last `windowSize` calls that opens the circuit; needs `slowCallMs`. Off unless given. */
  slowCallRate?: number;
  /** Bulkhead: calls running at once; beyond it calls queue (`maxQueued`) or fail with `BULKHEAD_FULL`. Default Infinity. */
  maxConcurrent?: number;
  /** Bulkhead: calls waiting for a free slot; beyond it calls fail at once with `BULKHEAD_FULL`. Default 0. */
  maxQueued?: number;
}

/** Validated options with defaults applied. */
export interface ResolvedBreakerOptions extends BreakerSettings {
  callTimeoutMs: number;
  isFailure: ((error: unknown) => boolean) | undefined;
  captureStack: boolean;
  scope: 'process' | 'fleet';
  fleetSyncMs: number;
  /** `Infinity` when slow calls are not measured. */
  slowCallMs: number;
  maxConcurrent: number;
  maxQueued: number;
}

const KNOWN = [
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
  'scope',
  'fleetSyncMs',
  'slowCallMs',
  'slowCallRate',
  'maxConcurrent',
  'maxQueued',
];

/** Checks a breaker name: it becomes topic tokens (`breaker.<name>.opened`), so no wildcards and no empty tokens. */
export function checkBreakerName(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw invalidOptions('breaker', 'name', `must be a non-empty string, got ${describeValue(name)}`);
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
  const r = new OptionReader(owner, options, KNOWN, 'a breaker option');
  const o = r.values;
  const duration = (key: string, fallback: number, min: number): number => {
    const v = r.int(key, fallback, min);
    return r.duration(key, v, min);
  };
  const rate = (key: string): number | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !(v > 0 && v <= 1)) {
      throw invalidOptions(owner, key, `must be a number in (0, 1], got ${describeValue(v)}`);
    }
    return v;
  };

  const failureThreshold = r.int('failureThreshold', 5, 1, true);
  const failureRate = rate('failureRate');
  const windowSize = r.int('windowSize', 20, 1);
  const minimumCalls = r.int('minimumCalls', Math.min(10, windowSize), 1);
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
    throw invalidOptions(owner, 'backoffMultiplier', `must be a finite number >= 1, got ${describeValue(m)}`);
  }
  const halfOpenMaxCalls = r.int('halfOpenMaxCalls', 1, 1);
  const successThreshold = r.int('successThreshold', 1, 1);
  const isFailure = r.fn<(error: unknown) => boolean>('isFailure', '(error) => boolean');
  const captureStack = r.bool('captureStack', false);
  const scope = o.scope ?? 'process';
  if (scope !== 'process' && scope !== 'fleet') {
    throw invalidOptions(owner, 'scope', `must be 'process' or 'fleet', got ${describeValue(scope)}`);
  }
  const fleetSyncMs = duration('fleetSyncMs', 100, 1);
  const slowCallMs = o.slowCallMs === undefined ? Number.POSITIVE_INFINITY : duration('slowCallMs', 0, 1);
  const slowCallRate = rate('slowCallRate');
  if (slowCallRate !== undefined && o.slowCallMs === undefined) {
    throw invalidOptions(owner, 'slowCallRate', 'needs slowCallMs (what counts as slow)');
  }
  if (callTimeoutMs > 0 && slowCallMs !== Number.POSITIVE_INFINITY && slowCallMs >= callTimeoutMs) {
    throw invalidOptions(
      owner,
      'slowCallMs',
      `must be below callTimeoutMs (${callTimeoutMs}): a call that slow has already timed out, got ${slowCallMs}`,
    );
  }
  const maxConcurrent = r.int('maxConcurrent', Number.POSITIVE_INFINITY, 1, true);
  const maxQueued = r.int('maxQueued', 0, 0, true);
  if (maxQueued > 0 && maxConcurrent === Number.POSITIVE_INFINITY) {
    throw invalidOptions(owner, 'maxQueued', `needs maxConcurrent (calls only queue behind a limit), got ${maxQueued}`);
  }
  return {
    name,
    failureThreshold,
    failureRate,
    slowCallRate,
    minimumCalls,
    windowSize,
    callTimeoutMs,
    resetTimeoutMs,
    maxResetTimeoutMs,
    backoffMultiplier: m,
    halfOpenMaxCalls,
    successThreshold,
    isFailure,
    captureStack,
    scope,
    fleetSyncMs,
    slowCallMs,
    maxConcurrent,
    maxQueued,
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
