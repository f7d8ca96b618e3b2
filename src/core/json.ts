import { KeelError } from './errors.js';

/**
 * Where `value` holds something JSON cannot carry faithfully, as a message
 * naming the path (`payload.items[2] is NaN`), or undefined when it is plain
 * JSON. Stricter than `JSON.stringify`, which silently turns `NaN` into null,
 * drops `undefined` and functions, and flattens a `Date` or a `Map`: what a
 * store gives back must be what was put in, whatever the store.
 */
export function jsonProblem(value: unknown, path: string, seen = new Set<object>()): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${value}`;
    case 'object': {
      if (value === null) return undefined;
      if (seen.has(value)) return `${path} is a circular reference`;
      seen.add(value);
      let problem: string | undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length && !problem; i++) problem = jsonProblem(value[i], `${path}[${i}]`, seen);
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          problem = `${path} is a ${(value as object).constructor?.name ?? 'non-plain object'}, not a plain object`;
        }
        for (const k of Object.keys(value)) {
          if (problem) break;
          problem = jsonProblem((value as Record<string, unknown>)[k], `${path}.${k}`, seen);
        }
      }
      seen.delete(value);
      return problem;
    }
    default:
      return `${path} is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}`;
  }
}

/**
 * Checks that `value` is plain JSON (a top-level `undefined` is allowed: "no
 * value"); throws `KeelError` `INVALID_PAYLOAD` naming `what` and the path.
 */
export function encodeJson(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  return encodeValue(value, what, 'value');
}

/**
 * The JSON text of a value that must be present (a task payload): anything JSON
 * cannot carry faithfully, `undefined` included, throws `INVALID_PAYLOAD` naming
 * `what` and the path under `path`.
 */
export function encodeValue(value: unknown, what: string, path: string): string {
  const problem = jsonProblem(value, path);
  if (problem) throw new KeelError('INVALID_PAYLOAD', `${what} must be plain JSON: ${problem}`);
  return JSON.stringify(value);
}

/** The value of stored JSON text; text that is not JSON (a corrupt row) is returned as the text itself. */
export function decodeOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A readable one-line description of whatever was thrown (it need not be an Error). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    if (typeof error === 'string') return `thrown string: ${error}`;
    const json = JSON.stringify(error);
    return `thrown ${typeof error}: ${json ?? String(error)}`;
  } catch {
    return `thrown ${typeof error} (not printable)`;
  }
}

/** An error as plain data, for events and storage: an `Error` becomes `{ name, message, code }`. */
export function errorData(error: unknown): unknown {
  if (error instanceof Error)
    return { name: error.name, message: error.message, code: (error as { code?: unknown }).code };
  return error;
}
