import { KeelError } from '../runtime/errors.js';

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
  const problem = jsonProblem(value, 'value');
  if (problem) throw new KeelError('INVALID_PAYLOAD', `${what} must be plain JSON: ${problem}`);
  return JSON.stringify(value);
}
