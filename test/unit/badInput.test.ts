import { describe, expect, it } from 'vitest';
import { createRuntime, postgresStore, sqliteStore } from '../../src/index.js';
import { TestClock } from '../../src/testing/index.js';
import { refusal } from '../fixtures/refusal.js';

/** Issue #12, points 9-12: bad input gets `INVALID_OPTIONS` naming the option, never a silent default. */

describe('unknown option keys are refused, naming the key', () => {
  it('createRuntime refuses a misspelt store instead of running on memory', () => {
    const e = refusal(() => createRuntime({ storee: sqliteStore({ path: ':memory:' }) } as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain("'storee'");
  });

  it('createRuntime refuses a non-object', () => {
    expect(refusal(() => createRuntime(42 as never)).code).toBe('INVALID_OPTIONS');
  });

  it('sqliteStore refuses unknown keys and wrong types', () => {
    expect(refusal(() => sqliteStore({ path: 'x.db', busyTimout: 5 } as never)).message).toContain("'busyTimout'");
    for (const busyTimeoutMs of ['abc', Number.POSITIVE_INFINITY, -1, 1.5, Number.NaN]) {
      const e = refusal(() => sqliteStore({ path: 'x.db', busyTimeoutMs } as never));
      expect(e.code).toBe('INVALID_OPTIONS');
      expect(e.message).toContain('busyTimeoutMs');
    }
    expect(refusal(() => sqliteStore({ path: '' })).message).toContain("'path'");
    expect(refusal(() => sqliteStore({ path: 'x.db', synchronous: 'OFF' } as never)).message).toContain('synchronous');
  });

  it('postgresStore refuses unknown keys', () => {
    const e = refusal(() => postgresStore({ connectionString: 'postgres://127.0.0.1/test', pool: 3 } as never));
    expect(e.message).toContain("'pool'");
  });

  it("retry options refuse keys that every object has ('constructor', 'toString', '__proto__')", () => {
    const rt = createRuntime();
    for (const key of ['constructor', 'toString', 'hasOwnProperty']) {
      const e = refusal(() => rt.queue(`q-${key}`, { handler: async () => {}, retry: { [key]: 1 } as never }));
      expect(e.code).toBe('INVALID_OPTIONS');
      expect(e.message).toContain(`retry.${key}`);
    }
    const proto = JSON.parse('{"__proto__": {"maxAttempts": 1}}');
    expect(refusal(() => rt.queue('q-proto', { handler: async () => {}, retry: proto })).message).toContain(
      'retry.__proto__',
    );
  });

  it('queue options refuse Object.prototype names too', () => {
    const rt = createRuntime();
    const e = refusal(() => rt.queue('q', { handler: async () => {}, constructor: 1 } as never));
    expect(e.message).toContain("'constructor'");
  });
});

describe('durations past the Node timer limit (2^31-1 ms) are refused or work (issue #12.9)', () => {
  it('queue timeoutMs, leaseMs, pollMs and graceMs above the limit are refused with INVALID_OPTIONS', () => {
    const rt = createRuntime();
    for (const option of ['timeoutMs', 'leaseMs', 'pollMs', 'graceMs']) {
      const e = refusal(() => rt.queue(`q-${option}`, { handler: async () => {}, [option]: 3e9 }));
      expect(e.code).toBe('INVALID_OPTIONS');
      expect(e.message).toContain(option);
    }
  });

  it('a retry backoff above the limit works: the task waits out the whole delay instead of running after 1 ms', async () => {
    const clock = new TestClock(0);
    const rt = createRuntime({ clock });
    let runs = 0;
    const q = rt.queue('long-backoff', {
      retry: { initialDelayMs: 3e9, maxDelayMs: 3e9, jitter: false, maxAttempts: 2 },
      // Few polls, so the simulated clock has few timers to step through on its way past 3e9 ms.
      pollMs: 2e9,
      handler: async () => {
        runs++;
        if (runs === 1) throw new Error('down');
      },
    });
    await rt.start();
    await q.enqueue({});
    await clock.advance(10);
    expect(runs).toBe(1);
    expect(await q.stats()).toMatchObject({ retrying: 1 });
    await clock.advance(2 ** 31);
    expect(runs).toBe(1);
    await clock.advance(3e9);
    await q.drain();
    expect(runs).toBe(2);
    const stopped = rt.stop();
    await clock.advance(60_000);
    await stopped;
  });
});
