import { invalidOptions } from './errors.js';

/** The longest delay a Node timer keeps: a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A value as an option error message shows it: strings quoted, objects as JSON, never throwing. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return v.toString();
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null) return String(v);
  try {
    return JSON.stringify(v) ?? typeof v;
  } catch {
    return typeof v;
  }
}

/**
 * Reads one options object for `owner` (`queue('sync')`): refuses a value that
 * is not an object and any key outside `known` (a misspelt option would
 * otherwise be ignored silently), then checks each option as it is read. Every
 * refusal is `INVALID_OPTIONS` naming the option and the value.
 */
export class OptionReader {
  readonly values: Record<string, unknown>;

  constructor(
    readonly owner: string,
    options: unknown,
    known: readonly string[],
    /** How the options are called in messages: `a queue option`. */
    what = 'an option',
    /** The name of the whole object in messages. */
    option = 'options',
  ) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw invalidOptions(owner, option, `must be an object, got ${describeValue(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) throw invalidOptions(owner, key, `is not ${what} (known: ${known.join(', ')})`);
    }
    this.values = options as Record<string, unknown>;
  }

  /** An integer >= `min` (or `Infinity` when `infinite`), `fallback` when absent. */
  int(key: string, fallback: number, min: number, infinite = false): number {
    const v = this.values[key];
    if (v === undefined) return fallback;
    const ok =
      typeof v === 'number' && ((infinite && v === Number.POSITIVE_INFINITY) || (Number.isInteger(v) && v >= min));
    if (!ok) {
      throw invalidOptions(
        this.owner,
        key,
        `must be an integer >= ${min}${infinite ? ' or Infinity' : ''}, got ${describeValue(v)}`,
      );
    }
    return v;
  }

  /** A finite number of milliseconds >= `min` that a timer can hold (at most `MAX_TIMER_MS`), `fallback` when absent. */
  duration(key: string, fallback: number, min: number): number {
    const v = this.values[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      throw invalidOptions(this.owner, key, `must be a finite number >= ${min}, got ${describeValue(v)}`);
    }
    if (v > MAX_TIMER_MS) throw invalidOptions(this.owner, key, `must be at most ${MAX_TIMER_MS} ms, got ${v}`);
    return v;
  }

  /** A boolean, `fallback` when absent. */
  bool(key: string, fallback: boolean): boolean {
    const v = this.values[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw invalidOptions(this.owner, key, `must be a boolean, got ${describeValue(v)}`);
    return v;
  }

  /** A function when given; `shape` describes it in the message (`(task) => Promise`). */
  fn<F extends (...args: any[]) => unknown>(key: string, shape: string): F | undefined {
    const v = this.values[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'function')
      throw invalidOptions(this.owner, key, `must be a function ${shape}, got ${describeValue(v)}`);
    return v as F;
  }

  /** A non-empty string when given; `what` describes it in the message. */
  string(key: string, what = 'a non-empty string'): string | undefined {
    const v = this.values[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '')
      throw invalidOptions(this.owner, key, `must be ${what}, got ${describeValue(v)}`);
    return v;
  }
}
