import { KeelError } from './errors.js';

/** How deep a value may nest: deeper, it is refused instead of overflowing the stack of every reader. */
export const MAX_JSON_DEPTH = 256;

/**
 * Where `value` holds something JSON cannot carry faithfully, as a message
 * naming the path (`payload.items[2] is NaN`), or undefined when it is plain
 * JSON. Stricter than `JSON.stringify`, which silently turns `NaN` into null,
 * drops `undefined` and functions, and flattens a `Date` or a `Map`: what a
 * store gives back must be what was put in, whatever the store. A value nested
 * deeper than `MAX_JSON_DEPTH`, or one whose getter throws, is a problem too,
 * never an exception.
 */
export function jsonProblem(value: unknown, path: string): string | undefined {
  try {
    return problemAt(value, path, new Set<object>(), 0);
  } catch (error) {
    return `${path} could not be read (${describeError(error)})`;
  }
}

function problemAt(value: unknown, path: string, seen: Set<object>, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${value}`;
    case 'object': {
      if (value === null) return undefined;
      if (depth >= MAX_JSON_DEPTH) return `${path} is nested deeper than ${MAX_JSON_DEPTH} levels`;
      if (seen.has(value)) return `${path} is a circular reference`;
      seen.add(value);
      let problem: string | undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length && !problem; i++)
          problem = problemAt(value[i], `${path}[${i}]`, seen, depth + 1);
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          problem = `${path} is a ${(value as object).constructor?.name ?? 'non-plain object'}, not a plain object`;
        }
        for (const k of Object.keys(value)) {
          if (problem) break;
          problem = problemAt((value as Record<string, unknown>)[k], `${path}.${k}`, seen, depth + 1);
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

/** The longest text an error description keeps: a thrown 100 MB string must not become a 100 MB row or event. */
export const MAX_ERROR_TEXT = 4096;

function clip(text: string): string {
  return text.length <= MAX_ERROR_TEXT ? text : `${text.slice(0, MAX_ERROR_TEXT)}... (${text.length} chars)`;
}

/**
 * A readable one-line description of whatever was thrown (it need not be an
 * Error): bounded in length, and never throws itself, whatever the value
 * (a cycle, a `BigInt`, a `Symbol`, a getter that throws, a Proxy).
 */
export function describeError(error: unknown): string {
  try {
    if (error instanceof Error) return clip(`${error.name}: ${error.message}`);
    switch (typeof error) {
      case 'string':
        return clip(`thrown string: ${error}`);
      case 'bigint':
        return `thrown bigint: ${error}n`;
      case 'symbol':
        return `thrown symbol: ${error.toString()}`;
      case 'function':
        return 'thrown function';
    }
    return clip(`thrown ${typeof error}: ${JSON.stringify(error) ?? String(error)}`);
  } catch {
    return `thrown ${typeof error} (not printable)`;
  }
}

/**
 * An error as plain, bounded JSON data, for events and storage: an `Error`
 * becomes `{ name, message, code? }`; a thrown value that is small plain JSON
 * stays as it is; anything else (a cycle, a `BigInt`, a `Symbol`, a huge
 * string) becomes `{ name: 'NonJsonError', message }` with its description.
 * Never throws, so a strange throw can never stop a saga from being saved.
 */
export function errorData(error: unknown): unknown {
  try {
    if (error instanceof Error) {
      const code = (error as { code?: unknown }).code;
      return {
        name: clip(String(error.name)),
        message: clip(String(error.message)),
        ...((typeof code === 'string' || (typeof code === 'number' && Number.isFinite(code))) && { code }),
      };
    }
    if (error === undefined) return undefined;
    if (jsonProblem(error, 'error') === undefined && JSON.stringify(error).length <= MAX_ERROR_TEXT) return error;
  } catch {
    // described below
  }
  return { name: 'NonJsonError', message: describeError(error) };
}
