import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/core/clock.js';

describe('systemClock.afterTurn', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('runs every callback of a turn once the turn ended, in order, with one setImmediate', async () => {
    const immediates = vi.spyOn(globalThis, 'setImmediate');
    const log: string[] = [];
    for (let i = 0; i < 5; i++) systemClock.afterTurn?.(() => log.push(`end ${i}`));
    await Promise.resolve();
    log.push('microtask');
    expect(immediates).toHaveBeenCalledTimes(1);
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['microtask', 'end 0', 'end 1', 'end 2', 'end 3', 'end 4']);

    // The next turn gets its own.
    systemClock.afterTurn?.(() => log.push('next'));
    await new Promise((r) => setImmediate(r));
    expect(log.at(-1)).toBe('next');
  });

  it('a throwing callback does not keep the others from running; its error is thrown after them', () => {
    let scheduled: (() => void) | undefined;
    vi.spyOn(globalThis, 'setImmediate').mockImplementation(((fn: () => void) => {
      scheduled = fn;
      return {} as NodeJS.Immediate;
    }) as typeof setImmediate);
    const log: string[] = [];
    systemClock.afterTurn?.(() => log.push('a'));
    systemClock.afterTurn?.(() => {
      throw new Error('boom');
    });
    systemClock.afterTurn?.(() => log.push('c'));
    expect(scheduled).toBeDefined();
    expect(() => scheduled?.()).toThrow('boom');
    expect(log).toEqual(['a', 'c']);
  });
});

describe('systemClock.setTimeout past the Node timer limit (2^31-1 ms)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires a 30-day timer after 30 days, not after 1 ms, and can be cleared while re-arming', () => {
    vi.useFakeTimers();
    const day = 86_400_000;
    let fired = 0;
    systemClock.setTimeout(() => fired++, 30 * day);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(29 * day);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(day);
    expect(fired).toBe(1);

    let cleared = 0;
    const handle = systemClock.setTimeout(() => cleared++, 60 * day);
    vi.advanceTimersByTime(40 * day); // past the first link of the chain
    systemClock.clearTimeout(handle);
    vi.advanceTimersByTime(30 * day);
    expect(cleared).toBe(0);
  });

  it('short timers stay plain Node timers', () => {
    vi.useFakeTimers();
    let fired = false;
    const h = systemClock.setTimeout(() => {
      fired = true;
    }, 10);
    vi.advanceTimersByTime(10);
    expect(fired).toBe(true);
    systemClock.clearTimeout(h);
  });
});
