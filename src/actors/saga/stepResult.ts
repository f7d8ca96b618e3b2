import { describeError, jsonProblem, MAX_JSON_DEPTH } from '../../core/json.js';

/** A step's result as the saga keeps it, or why it cannot keep it. */
export type Kept = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * The one rule for what a step may return (README, "Saga"): the result is
 * kept as JSON carries it, so a resumed saga sees exactly what a live one saw.
 * What JSON has a faithful spelling for is normalised the way `JSON.stringify`
 * writes it: a `toJSON()` method is honoured (a `Date` becomes its ISO
 * string) and an object field that is `undefined` is left out. Everything
 * JSON would change silently or cannot write is refused, with the path:
 * `NaN`/`Infinity`, a `BigInt`, a `Symbol`, a function, `undefined` in an
 * array, an object of a class without `toJSON` (a `Map`, a class instance), a
 * cycle, nesting deeper than `MAX_JSON_DEPTH`, a getter that throws. A
 * top-level `undefined` is "no result".
 */
export function keepResult(value: unknown): Kept {
  // Plain JSON already (the usual case): kept as it is, without a copy.
  if (value === undefined || jsonProblem(value, 'value') === undefined) return { ok: true, value };
  try {
    const problems: string[] = [];
    const kept = normalise(value, 'value', new Set(), 0, problems);
    return problems.length === 0 ? { ok: true, value: kept } : { ok: false, problem: problems[0] as string };
  } catch (error) {
    return { ok: false, problem: `value could not be read (${describeError(error)})` };
  }
}

function normalise(value: unknown, path: string, seen: Set<object>, depth: number, problems: string[]): unknown {
  if (problems.length > 0) return undefined;
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      if (!Number.isFinite(value)) problems.push(`${path} is ${value}`);
      return value;
    case 'object':
      break;
    default:
      problems.push(`${path} is a ${typeof value}`);
      return undefined;
  }
  if (value === null) return null;
  if (depth >= MAX_JSON_DEPTH) {
    problems.push(`${path} is nested deeper than ${MAX_JSON_DEPTH} levels`);
    return undefined;
  }
  if (seen.has(value)) {
    problems.push(`${path} is a circular reference`);
    return undefined;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    seen.add(value);
    const out = normalise(toJSON.call(value, ''), path, seen, depth + 1, problems);
    seen.delete(value);
    return out;
  }
  seen.add(value);
  let out: unknown;
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (let i = 0; i < value.length && problems.length === 0; i++) {
      const item = normalise(value[i], `${path}[${i}]`, seen, depth + 1, problems);
      // JSON would write null in its place: a different value, so refused rather than changed.
      if (item === undefined && problems.length === 0) problems.push(`${path}[${i}] is undefined`);
      items.push(item);
    }
    out = items;
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (value as object).constructor?.name;
      problems.push(`${path} is ${kind ? `a ${kind}` : 'not a plain object'} (no toJSON)`);
    }
    const fields: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (problems.length > 0) break;
      const field = normalise((value as Record<string, unknown>)[key], `${path}.${key}`, seen, depth + 1, problems);
      if (field === undefined) continue;
      // A plain assignment to `__proto__` would set the prototype instead of keeping the field.
      if (key === '__proto__')
        Object.defineProperty(fields, key, { value: field, enumerable: true, writable: true, configurable: true });
      else fields[key] = field;
    }
    out = fields;
  }
  seen.delete(value);
  return out;
}
