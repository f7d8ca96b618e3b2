import { KeelError } from '../../runtime/errors.js';

/**
 * The JSON text of a task payload, or a `KeelError` `INVALID_PAYLOAD` naming
 * the first value JSON cannot carry faithfully. Stricter than
 * `JSON.stringify`, which silently turns `NaN` into null, drops `undefined`
 * and functions, and flattens a `Date` or a `Map`: a task must come back to
 * the handler exactly as it was enqueued, from any store.
 */
export function encodePayload(queue: string, payload: unknown): string {
  const problem = findProblem(payload, 'payload', new Set());
  if (problem) {
    throw new KeelError('INVALID_PAYLOAD', `queue('${queue}').enqueue: ${problem}; payloads must be plain JSON`);
  }
  return JSON.stringify(payload);
}

function findProblem(value: unknown, path: string, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${value}`;
    case 'object': {
      if (value === null) return undefined;
      if (seen.has(value)) return `${path} is a circular reference`;
      if (Array.isArray(value)) {
        seen.add(value);
        for (let i = 0; i < value.length; i++) {
          const p = findProblem(value[i], `${path}[${i}]`, seen);
          if (p) return p;
        }
        seen.delete(value);
        return undefined;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        return `${path} is a ${(value as object).constructor?.name ?? 'non-plain object'}, not a plain object`;
      }
      seen.add(value);
      for (const k of Object.keys(value)) {
        const p = findProblem((value as Record<string, unknown>)[k], `${path}.${k}`, seen);
        if (p) return p;
      }
      seen.delete(value);
      return undefined;
    }
    default:
      return `${path} is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}`;
  }
}
