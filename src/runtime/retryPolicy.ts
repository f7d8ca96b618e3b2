import { defaultRetry, type RetryPolicy } from '../actors/queue/backoff.js';
import { invalidOptions } from './errors.js';

export type { RetryPolicy } from '../actors/queue/backoff.js';

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
    if (!(key in defaults)) {
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
