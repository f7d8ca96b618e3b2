import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, sqliteStore } from '../../src/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

/** Misbehaving handlers, on a real clock and a SQLite file. */
describe('misbehaving handlers (SQLite, real time)', () => {
  let rt: Runtime | undefined;
  let path = '';
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
    removeDb(path);
  });
  const start = () => {
    path = `${tempPath('handlers')}.db`;
    rt = createRuntime({ store: sqliteStore({ path }), onError: () => {} });
    return rt;
  };

  it('non-Error throws are retried and recorded; every task ends succeeded', async () => {
    const rt = start();
    const thrown: unknown[] = ['text', undefined, null, { code: 7 }, 42, Symbol.for('s')];
    const errors: string[] = [];
    rt.bus.subscribe('task.odd.retrying', (p) => errors.push((p as { error: string }).error));
    const q = rt.queue('odd', {
      concurrency: 3,
      retry: { initialDelayMs: 5, maxDelayMs: 20 },
      handler: (t) => {
        if (t.attempt === 1) throw thrown[t.payload as number];
      },
    });
    await rt.start();
    for (let i = 0; i < thrown.length; i++) await q.enqueue(i);
    await q.drain();
    expect(await q.stats()).toMatchObject({ succeeded: thrown.length, dead: 0 });
    expect(errors.sort()).toEqual(
      [
        'thrown string: text',
        'thrown undefined: undefined',
        'thrown object: null',
        'thrown object: {"code":7}',
        'thrown number: 42',
        'thrown symbol: Symbol(s)',
      ].sort(),
    );
  });

  it('a handler that never settles is cut off by timeoutMs and the task retried', async () => {
    const rt = start();
    let aborted = 0;
    const q = rt.queue('hang', {
      timeoutMs: 100,
      retry: { initialDelayMs: 5 },
      handler: (t) => {
        t.signal.addEventListener('abort', () => aborted++);
        if (t.attempt === 1) return new Promise(() => {});
      },
    });
    await rt.start();
    await q.enqueue('x');
    await q.drain();
    expect(aborted).toBe(1);
    expect(await q.stats()).toMatchObject({ succeeded: 1, dead: 0 });
  });

  it('a handler that runs three leases long keeps its lease and is delivered once', async () => {
    const rt = start();
    let runs = 0;
    const q = rt.queue('slow', {
      leaseMs: 100,
      pollMs: 20,
      handler: async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 350));
      },
    });
    await rt.start();
    await q.enqueue('x');
    await q.drain();
    expect(runs).toBe(1);
    expect(await q.stats()).toMatchObject({ succeeded: 1, dead: 0 });
  });
});
