import { invalidOptions } from '../../core/errors.js';
import { describeValue } from '../../core/options.js';
import type { SagaRecordStatus } from '../../stores/sagaStore.js';

/** How long finished runs of one status are kept. A run goes when either limit is passed. */
export interface SagaRetentionRule {
  /** Keep at most the newest `count` (by when they finished); `Infinity` keeps any number. Default 1,000. */
  count?: number;
  /** Keep for at most `ageMs` after they finished; `Infinity` keeps them for any time. Default 7 days. */
  ageMs?: number;
}

/**
 * `rt.saga(name, { retention })`: how long finished runs are kept, by how
 * they ended. While a run is kept, `get`/`list` show it and `execute` with its
 * id returns its stored result instead of running it again: the retention is
 * the idempotency window of `execute(input, { id })`.
 */
export interface SagaRetentionOptions {
  completed?: SagaRetentionRule;
  compensated?: SagaRetentionRule;
  failed?: SagaRetentionRule;
  cancelled?: SagaRetentionRule;
}

/** A final status the pruner deletes runs of. */
export type FinishedStatus = 'completed' | 'compensated' | 'failed' | 'cancelled';

/** The retention of each final status, with defaults filled in (`Infinity`: no limit). */
export type ResolvedRetention = Record<FinishedStatus, { count: number; ageMs: number }>;

/** Per final status, when a rule (or a field of it) is not given: the newest 1,000, for 7 days. */
export const DEFAULT_SAGA_RETENTION = { count: 1_000, ageMs: 7 * 24 * 60 * 60 * 1_000 } as const;

export const FINISHED_STATUSES: readonly FinishedStatus[] = ['completed', 'compensated', 'failed', 'cancelled'];

/** Reads `retention` of `rt.saga`; `INVALID_OPTIONS` names the bad field and its value. */
export function parseSagaRetention(owner: string, raw: unknown): ResolvedRetention {
  const given = object(owner, 'retention', raw);
  const out = {} as ResolvedRetention;
  for (const key of Object.keys(given)) {
    if (!isFinishedStatus(key as SagaRecordStatus)) {
      throw invalidOptions(owner, `retention.${key}`, `is not a final status (known: ${FINISHED_STATUSES.join(', ')})`);
    }
  }
  for (const status of FINISHED_STATUSES) {
    const path = `retention.${status}`;
    const rule = object(owner, path, given[status]);
    for (const key of Object.keys(rule)) {
      if (key !== 'count' && key !== 'ageMs') {
        throw invalidOptions(owner, `${path}.${key}`, 'is not a retention option (known: count, ageMs)');
      }
    }
    out[status] = {
      count: limit(owner, `${path}.count`, rule.count, DEFAULT_SAGA_RETENTION.count, true),
      ageMs: limit(owner, `${path}.ageMs`, rule.ageMs, DEFAULT_SAGA_RETENTION.ageMs, false),
    };
  }
  return out;
}

function object(owner: string, path: string, v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw invalidOptions(owner, path, `must be an object, got ${describeValue(v)}`);
  }
  return v as Record<string, unknown>;
}

function limit(owner: string, path: string, v: unknown, fallback: number, integer: boolean): number {
  if (v === undefined) return fallback;
  const ok =
    typeof v === 'number' &&
    v >= 0 &&
    (v === Number.POSITIVE_INFINITY || (Number.isFinite(v) && (!integer || Number.isInteger(v))));
  if (!ok) {
    throw invalidOptions(
      owner,
      path,
      `must be ${integer ? 'an integer' : 'a number'} >= 0 or Infinity, got ${describeValue(v)}`,
    );
  }
  return v;
}

/** True when `status` is one the pruner deletes runs of. */
export function isFinishedStatus(status: SagaRecordStatus): status is FinishedStatus {
  return (FINISHED_STATUSES as readonly string[]).includes(status);
}
