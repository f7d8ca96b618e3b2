import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type KeelError, type Runtime } from '../../src/index.js';
import { TestClock } from '../../src/testing/index.js';

const runtimes: Runtime<any>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop().catch(() => {});
});

function runtime() {
  const rt = createRuntime({ clock: new TestClock(0), onError: () => {} });
  runtimes.push(rt);
  return rt;
}

const one = () => 1;
const LONG = 2 ** 31; // one past what a timer holds

function refusal(fn: () => unknown): KeelError {
  try {
    fn();
  } catch (e) {
    return e as KeelError;
  }
  throw new Error('expected INVALID_OPTIONS, nothing was thrown');
}

describe('saga options: unknown keys and wrong types are refused, naming the option', () => {
  it.each<[string, unknown, RegExp]>([
    [
      'a misspelt saga option',
      { steps: [{ name: 's', run: one }], stepTimeout: 10 },
      /option 'stepTimeout' is not a saga option/,
    ],
    [
      'a retention status that is not final',
      { steps: [{ name: 's', run: one }], retention: { running: {} } },
      /'retention\.running' is not a final status/,
    ],
    [
      'a retention rule that is not an object',
      { steps: [{ name: 's', run: one }], retention: { completed: 5 } },
      /'retention\.completed' must be an object, got 5/,
    ],
    [
      'a retention rule key that is not count or ageMs',
      { steps: [{ name: 's', run: one }], retention: { failed: { max: 1 } } },
      /'retention\.failed\.max' is not a retention option/,
    ],
    [
      'a retention count that is not an integer',
      { steps: [{ name: 's', run: one }], retention: { completed: { count: 1.5 } } },
      /'retention\.completed\.count' must be an integer >= 0 or Infinity, got 1\.5/,
    ],
    [
      'a negative retention age',
      { steps: [{ name: 's', run: one }], retention: { cancelled: { ageMs: -1 } } },
      /'retention\.cancelled\.ageMs' must be a number >= 0 or Infinity, got -1/,
    ],
    [
      'a misspelt step option',
      { steps: [{ name: 's', run: one, compensation: one }] },
      /'steps\[0\]\.compensation' is not a step option/,
    ],
    [
      'a step option named like an Object method',
      { steps: [{ name: 's', run: one, constructor: one }] },
      /'steps\[0\]\.constructor' is not a step option/,
    ],
    ['options that are not an object', 'steps', /option 'options' must be an object/],
    ['options that are an array', [], /option 'options' must be an object/],
    ['a step that is not an object', { steps: [42] }, /'steps\[0\]' must be an object/],
    [
      'a string stepTimeoutMs',
      { steps: [{ name: 's', run: one }], stepTimeoutMs: '10' },
      /'stepTimeoutMs' must be a finite number >= 0, got '10'/,
    ],
    [
      'an infinite stepTimeoutMs',
      { steps: [{ name: 's', run: one }], stepTimeoutMs: Number.POSITIVE_INFINITY },
      /'stepTimeoutMs' must be a finite/,
    ],
    [
      'a NaN shutdownGraceMs',
      { steps: [{ name: 's', run: one }], shutdownGraceMs: Number.NaN },
      /'shutdownGraceMs' must be a finite/,
    ],
    [
      'a boolean step timeoutMs',
      { steps: [{ name: 's', run: one, timeoutMs: true }] },
      /'steps\[0\]\.timeoutMs' must be a finite number >= 0, got true/,
    ],
    ['a retry that is a number', { steps: [{ name: 's', run: one }], retry: 3 }, /'retry' must be an object/],
    [
      'a step retry key that is not a retry option',
      { steps: [{ name: 's', run: one, retry: { toString: 1 } }] },
      /'steps\[0\]\.retry\.toString' is not a retry option/,
    ],
    ['a run that is a string', { steps: [{ name: 's', run: 'go' }] }, /'steps\[0\]\.run' must be a function, got 'go'/],
  ])('%s', (_label, options, message) => {
    const e = refusal(() => runtime().saga('ok', options as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toMatch(message);
  });
});

describe('saga durations beyond what a timer holds (2^31-1 ms) are refused', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['stepTimeoutMs', { stepTimeoutMs: LONG }, 'stepTimeoutMs'],
    ['a step timeoutMs', { steps: [{ name: 's', run: one, timeoutMs: 3e9 }] }, 'steps[0].timeoutMs'],
    ['shutdownGraceMs', { shutdownGraceMs: 1e10 }, 'shutdownGraceMs'],
    ['retry.maxDelayMs', { retry: { maxDelayMs: LONG } }, 'retry.maxDelayMs'],
    ['retry.initialDelayMs', { retry: { initialDelayMs: 3e9 } }, 'retry.initialDelayMs'],
    ['compensationRetry.maxDelayMs', { compensationRetry: { maxDelayMs: 1e300 } }, 'compensationRetry.maxDelayMs'],
    [
      'a step retry.maxDelayMs',
      { steps: [{ name: 's', run: one, retry: { maxDelayMs: LONG } }] },
      'steps[0].retry.maxDelayMs',
    ],
  ])('%s', (_label, extra, option) => {
    const e = refusal(() => runtime().saga('long', { steps: [{ name: 's', run: one }], ...extra } as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain(`option '${option}' must be at most 2147483647 ms`);
  });

  it('the longest a timer holds is accepted, and a step under it is not cut short', async () => {
    const clock = new TestClock(0);
    const rt = createRuntime({ clock, onError: () => {} });
    runtimes.push(rt);
    let release!: (v: string) => void;
    const saga = rt.saga('max', {
      stepTimeoutMs: 2 ** 31 - 1,
      shutdownGraceMs: 2 ** 31 - 1,
      retry: { maxDelayMs: 2 ** 31 - 1, initialDelayMs: 2 ** 31 - 1 },
      steps: [{ name: 's', run: () => new Promise<string>((r) => (release = r)) }],
    });
    await rt.start();
    const done = saga.execute({});
    await clock.advance(2 ** 31 - 2);
    release('in time');
    expect(await done).toMatchObject({ status: 'completed', results: { s: 'in time' } });
  });
});

describe('execute options and input', () => {
  it.each<[string, unknown, RegExp]>([
    ['null', null, /option 'options' must be an object, got null/],
    ['a string', 'id-1', /option 'options' must be an object, got 'id-1'/],
    ['a number', 7, /must be an object, got 7/],
    ['an unknown key', { idempotencyKey: 'k' }, /option 'idempotencyKey' is not an execute option/],
    ['a numeric id', { id: 42 }, /option 'id' must be a non-empty string, got 42/],
    ['an empty id', { id: '' }, /option 'id' must be a non-empty string/],
  ])('execute(input, %s) rejects with INVALID_OPTIONS', async (_label, options, message) => {
    const rt = runtime();
    const saga = rt.saga('s', { steps: [{ name: 'a', run: one }] });
    await rt.start();
    const e = (await saga.execute({}, options as never).catch((err) => err)) as KeelError;
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toMatch(message);
    expect(e.message).toContain("saga('s').execute");
    expect(saga.running).toBe(0);
  });

  it('input nested very deep or with a throwing getter rejects with INVALID_PAYLOAD, running nothing', async () => {
    const rt = runtime();
    let runs = 0;
    const saga = rt.saga('s', { steps: [{ name: 'a', run: () => ++runs }] });
    await rt.start();
    let deep: unknown = { leaf: true };
    for (let i = 0; i < 100_000; i++) deep = { next: deep };
    const getter = {
      get secret() {
        throw new Error('no access');
      },
    };
    for (const [input, message] of [
      [deep, /nested deeper than 256 levels/],
      [getter, /could not be read \(Error: no access\)/],
    ] as const) {
      const e = (await saga.execute(input).catch((err) => err)) as KeelError;
      expect(e.code).toBe('INVALID_PAYLOAD');
      expect(e.message).toMatch(message);
    }
    expect(runs).toBe(0);
  });
});
