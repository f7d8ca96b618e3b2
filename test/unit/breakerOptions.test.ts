import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
import { TestClock } from '../../src/testing/index.js';

let rt: Runtime;
afterEach(async () => {
  await rt?.stop();
});

const bad: Array<[string, Record<string, unknown>]> = [
  ['failureThreshold', { failureThreshold: 0 }],
  ['failureThreshold', { failureThreshold: 1.5 }],
  ['failureThreshold', { failureThreshold: '5' }],
  ['failureRate', { failureRate: 0 }],
  ['failureRate', { failureRate: 1.2 }],
  ['failureRate', { failureRate: Number.NaN }],
  ['minimumCalls', { minimumCalls: 0 }],
  ['minimumCalls', { windowSize: 5, minimumCalls: 6 }],
  ['windowSize', { windowSize: 0 }],
  ['callTimeoutMs', { callTimeoutMs: -1 }],
  ['callTimeoutMs', { callTimeoutMs: 3_000_000_000 }],
  ['resetTimeoutMs', { resetTimeoutMs: 0 }],
  ['resetTimeoutMs', { resetTimeoutMs: Number.POSITIVE_INFINITY }],
  ['maxResetTimeoutMs', { resetTimeoutMs: 1_000, maxResetTimeoutMs: 999 }],
  ['backoffMultiplier', { backoffMultiplier: 0.5 }],
  ['halfOpenMaxCalls', { halfOpenMaxCalls: 0 }],
  ['successThreshold', { successThreshold: -1 }],
  ['isFailure', { isFailure: true }],
  ['captureStack', { captureStack: 'yes' }],
  ['resetTimeout', { resetTimeout: 100 }],
];

describe('breaker options', () => {
  it.each(bad)('rejects a bad %s with INVALID_OPTIONS naming it and the value', (option, options) => {
    rt = createRuntime({ clock: new TestClock() });
    let error: any;
    try {
      rt.breaker('sms', options);
    } catch (e) {
      error = e;
    }
    expect(error?.code).toBe('INVALID_OPTIONS');
    expect(error.message).toContain(`'${option}'`);
    const value = Object.values(options).at(-1);
    if (typeof value === 'number' && option !== 'resetTimeout') expect(error.message).toContain(String(value));
  });

  it.each(['', 'a..b', 'a.*', 'sms>', 'two words', 42])('rejects the name %j', (name) => {
    rt = createRuntime({ clock: new TestClock() });
    expect(() => rt.breaker(name as string)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
  });

  it('accepts Infinity as failureThreshold (rate tripping only) and applies documented defaults', () => {
    rt = createRuntime({ clock: new TestClock() });
    const b = rt.breaker('eu.sms', { failureThreshold: Number.POSITIVE_INFINITY, failureRate: 0.5 });
    expect(b.actor.getSnapshot().context).toMatchObject({
      failureThreshold: Number.POSITIVE_INFINITY,
      failureRate: 0.5,
      minimumCalls: 10,
      windowSize: 20,
      resetTimeoutMs: 30_000,
      maxResetTimeoutMs: 300_000,
      backoffMultiplier: 1,
      halfOpenMaxCalls: 1,
      successThreshold: 1,
    });
    expect(rt.breaker('plain').actor.getSnapshot().context).toMatchObject({
      failureThreshold: 5,
      failureRate: undefined,
    });
  });
});
