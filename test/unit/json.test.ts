import { describe, expect, it } from 'vitest';
import { describeError, errorData, jsonProblem, MAX_ERROR_TEXT, MAX_JSON_DEPTH } from '../../src/core/json.js';
import { createRuntime, KeelError } from '../../src/index.js';

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { v };
  return v;
}

const withThrowingGetter = () => {
  const o = {};
  Object.defineProperty(o, 'bad', {
    enumerable: true,
    get() {
      throw new Error('getter exploded');
    },
  });
  return o;
};

describe('jsonProblem (issue #12.11): a problem, never an exception', () => {
  it('refuses values nested deeper than the limit, accepts the limit', () => {
    expect(jsonProblem(nested(MAX_JSON_DEPTH - 1), 'payload')).toBeUndefined();
    expect(jsonProblem(nested(100_000), 'payload')).toMatch(/nested deeper than/);
    expect(
      jsonProblem(
        Array.from({ length: 1 }, () => nested(MAX_JSON_DEPTH + 5)),
        'p',
      ),
    ).toMatch(/nested deeper/);
  });

  it('names a throwing getter instead of throwing', () => {
    expect(jsonProblem(withThrowingGetter(), 'payload')).toMatch(/could not be read.*getter exploded/);
  });

  it('enqueue and execute answer INVALID_PAYLOAD, not a raw RangeError or Error', async () => {
    const rt = createRuntime();
    const q = rt.queue('deep', { handler: async () => {}, paused: true });
    const saga = rt.saga('deep', { steps: [{ name: 'a', run: async () => 1 }] });
    await rt.start();
    for (const bad of [nested(100_000), withThrowingGetter()]) {
      const e1 = await q.enqueue(bad).catch((e) => e);
      expect(e1).toBeInstanceOf(KeelError);
      expect(e1.code).toBe('INVALID_PAYLOAD');
      const e2 = await saga.execute(bad).catch((e) => e);
      expect(e2).toBeInstanceOf(KeelError);
      expect(e2.code).toBe('INVALID_PAYLOAD');
    }
    await rt.stop();
  });
});

describe('describeError and errorData (issue #12.4): bounded, cycle-safe, never throwing', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const proxy = new Proxy(
    {},
    {
      get() {
        throw new Error('proxy trap');
      },
      ownKeys() {
        throw new Error('proxy trap');
      },
      getPrototypeOf() {
        throw new Error('proxy trap');
      },
    },
  );
  const errorWithBadMessage = new Error('x');
  Object.defineProperty(errorWithBadMessage, 'message', {
    get() {
      throw new Error('no message for you');
    },
  });
  const strange: unknown[] = [
    10n,
    Symbol('s'),
    null,
    undefined,
    cyclic,
    'x'.repeat(1_000_000),
    proxy,
    () => 1,
    errorWithBadMessage,
    Object.assign(new Error('e'), { code: 10n }),
  ];

  it.each(strange.map((v, i) => [i, v]))('value %i: describeError returns a bounded string', (_i, v) => {
    const text = describeError(v);
    expect(typeof text).toBe('string');
    expect(text.length).toBeLessThanOrEqual(MAX_ERROR_TEXT + 40);
  });

  it.each(strange.map((v, i) => [i, v]))('value %i: errorData is plain JSON of bounded size', (_i, v) => {
    const data = errorData(v);
    if (data === undefined) return expect(v).toBeUndefined();
    expect(jsonProblem(data, 'data')).toBeUndefined();
    expect(JSON.stringify(data).length).toBeLessThanOrEqual(2 * MAX_ERROR_TEXT + 200);
  });

  it('keeps an Error as { name, message, code } and small plain JSON as it is', () => {
    expect(errorData(Object.assign(new TypeError('bad'), { code: 'E_BAD' }))).toEqual({
      name: 'TypeError',
      message: 'bad',
      code: 'E_BAD',
    });
    expect(errorData({ reason: 'declined', retry: false })).toEqual({ reason: 'declined', retry: false });
    expect(errorData(cyclic)).toMatchObject({ name: 'NonJsonError' });
  });
});
