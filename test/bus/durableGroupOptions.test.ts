/** Bad `groupBy` / `groupConcurrency` of a durable subscription: `INVALID_OPTIONS` naming the option and value. */
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/index.js';
import { refusal as thrown } from '../fixtures/refusal.js';

describe('durable subscribe: groupBy and groupConcurrency', () => {
  const rt = createRuntime();
  const sub = (options: object) =>
    thrown(() => rt.bus.subscribe('user.updated', () => {}, { durable: 'x', ...options } as { durable: string }));

  it.each([
    [{ groupBy: '' }, 'groupBy', "''"],
    [{ groupBy: 'user..id' }, 'groupBy', "'user..id'"],
    [{ groupBy: '.userId' }, 'groupBy', "'.userId'"],
    [{ groupBy: 'userId.' }, 'groupBy', "'userId.'"],
    [{ groupBy: 'user id' }, 'groupBy', "'user id'"],
    [{ groupBy: 7 }, 'groupBy', '7'],
    [{ groupBy: (p: { userId: string }) => p.userId }, 'groupBy', 'function'],
    [{ groupBy: 'a'.repeat(201) }, 'groupBy', 'a'.repeat(201)],
    [{ groupBy: 'userId', groupConcurrency: 0 }, 'groupConcurrency', '0'],
    [{ groupBy: 'userId', groupConcurrency: 1.5 }, 'groupConcurrency', '1.5'],
    [{ groupBy: 'userId', groupConcurrency: '1' }, 'groupConcurrency', "'1'"],
    [{ groupConcurrency: 1 }, 'groupConcurrency', 'needs groupBy'],
  ])('refuses %j', (options, option, shown) => {
    const e = sub(options);
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain(`option '${option}'`);
    expect(e.message).toContain(shown);
  });

  it('takes a dot path and a group concurrency', () => {
    const off = rt.bus.subscribe('user.updated', () => {}, {
      durable: 'ok',
      groupBy: 'customer.id',
      groupConcurrency: 2,
    });
    expect(typeof off).toBe('function');
    off();
  });
});
