import { invalidOptions } from '../../core/errors.js';
import { describeValue } from '../../core/options.js';
import type { EnqueueOptions } from './options.js';

const KNOWN = ['key', 'delayMs', 'tx', 'onDuplicate', 'priority', 'group'];

/** The largest priority magnitude: every store keeps it as a 32-bit integer. */
const MAX_PRIORITY = 2 ** 31 - 1;

/** The latest time a JavaScript `Date` can hold: a task due later could never be read back as a time. */
const LATEST_RUN_AT = 8.64e15;

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** One enqueue's options, checked: the key as stored and when the task falls due. */
export interface CheckedEnqueue {
  key: string | undefined;
  runAt: number;
  tx: unknown;
  /** `onDuplicate: 'replace'`. */
  replace: boolean;
  /** 0 when not given. */
  priority: number;
  group: string | undefined;
}

/**
 * Checks one enqueue's options against `now`. A bad value throws
 * `INVALID_OPTIONS` for this enqueue alone, before anything reaches the store,
 * so it can never fail the other enqueues batched into the same store call.
 * Keys must be text every store keeps exactly: no NUL (Postgres refuses it)
 * and no lone surrogate (UTF-8 stores would fold different ones into one key).
 */
export function checkEnqueue(queue: string, options: EnqueueOptions, now: number): CheckedEnqueue {
  const owner = `queue('${queue}').enqueue`;
  if (typeof options !== 'object' || options === null) {
    throw invalidOptions(owner, 'options', `must be an object, got ${describeValue(options)}`);
  }
  for (const k in options) {
    if (!KNOWN.includes(k)) {
      throw invalidOptions(owner, k, `is not an enqueue option (known: ${KNOWN.join(', ')})`);
    }
  }
  const { key, delayMs, tx, priority = 0, group, onDuplicate } = options;
  if (onDuplicate !== undefined && onDuplicate !== 'keep' && onDuplicate !== 'replace') {
    throw invalidOptions(owner, 'onDuplicate', `must be 'keep' or 'replace', got ${describeValue(onDuplicate)}`);
  }
  // Stores keep it in a 32-bit integer column.
  if (typeof priority !== 'number' || !Number.isInteger(priority) || Math.abs(priority) > MAX_PRIORITY) {
    throw invalidOptions(
      owner,
      'priority',
      `must be an integer from -${MAX_PRIORITY} to ${MAX_PRIORITY}, got ${describeValue(priority)}`,
    );
  }
  if (group !== undefined) {
    if (typeof group !== 'string' || group === '') {
      throw invalidOptions(owner, 'group', `must be a non-empty string, got ${describeValue(group)}`);
    }
    if (group.includes('\u0000')) throw invalidOptions(owner, 'group', 'must not contain a NUL character');
    if (LONE_SURROGATE.test(group))
      throw invalidOptions(owner, 'group', 'must be well-formed text (it has a lone surrogate)');
  }
  if (key !== undefined) {
    if (typeof key !== 'string' || key === '') {
      throw invalidOptions(owner, 'key', `must be a non-empty string, got ${describeValue(key)}`);
    }
    if (key.includes('\u0000')) throw invalidOptions(owner, 'key', 'must not contain a NUL character');
    if (LONE_SURROGATE.test(key))
      throw invalidOptions(owner, 'key', 'must be well-formed text (it has a lone surrogate)');
  }
  let runAt = now;
  if (delayMs !== undefined) {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw invalidOptions(owner, 'delayMs', `must be a finite number >= 0, got ${describeValue(delayMs)}`);
    }
    // Whole milliseconds: stores keep times as integers.
    runAt = now + Math.ceil(delayMs);
    if (runAt > LATEST_RUN_AT) {
      throw invalidOptions(owner, 'delayMs', `puts the task past the latest date JavaScript can hold, got ${delayMs}`);
    }
  }
  return { key, runAt, tx, replace: onDuplicate === 'replace', priority, group };
}
