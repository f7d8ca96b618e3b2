import { describe, expect, it } from 'vitest';
import type { SagaInfo, SagaStep } from '../../src/index.js';
import { settle, type TestClock } from '../../src/testing/index.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { storeRuntimes } from '../fixtures/storeRuntimes.js';
import { until } from '../fixtures/wait.js';

/** saga.get / saga.list and the history kept with every checkpoint, on every store. */
for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`saga get, list and history (${kind.name})`, () => {
    const runtime = storeRuntimes(kind);
    /** Moves the clock until `done` holds (durable waits re-read the store between advances). */
    const drive = async (clock: TestClock, done: () => boolean | Promise<boolean>, stepMs = 500) => {
      for (let i = 0; i < 400 && !(await done()); i++) {
        await clock.advance(stepMs);
        await settle();
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(await done()).toBe(true);
    };

    it('get shows status, state, input, results and every state it went through: retries, sleep, wait, parallel, child', async () => {
      const { rt, clock } = runtime();
      rt.saga('shipping', { steps: [{ name: 'label', run: () => 'L-1' }] });
      let fails = 1;
      const steps = [
        {
          name: 'charge',
          retry: { maxAttempts: 3, initialDelayMs: 100, jitter: false },
          run: () => {
            if (fails-- > 0) throw new Error('card declined once');
            return 'ch-1';
          },
        },
        { name: 'cool', sleepMs: 1_000 },
        { name: 'approve', waitFor: 'approved' },
        {
          name: 'pack',
          parallel: [
            { name: 'box', run: () => 'b' },
            { name: 'tape', run: () => 't' },
          ],
        },
        { name: 'ship', saga: 'shipping', input: () => ({}) },
      ] as const satisfies readonly SagaStep[];
      const saga = rt.saga('order', { steps });
      await rt.start();
      expect(await saga.get('o1')).toBeUndefined();
      let result: unknown;
      void saga.execute({ sku: 'x' }, { id: 'o1' }).then((r) => (result = r));
      await drive(clock, async () => (await saga.get('o1'))?.state === 'running.approve');
      const waiting = (await saga.get('o1')) as SagaInfo;
      expect(waiting).toMatchObject({ id: 'o1', status: 'running', state: 'running.approve', input: { sku: 'x' } });
      expect(waiting.results).toMatchObject({ charge: 'ch-1' });
      await saga.signal('o1', 'approved', { by: 'ada' });
      await drive(clock, () => result !== undefined, 100);
      expect(result).toMatchObject({ status: 'completed' });
      const info = (await saga.get('o1')) as SagaInfo;
      expect(info).toMatchObject({
        id: 'o1',
        status: 'completed',
        state: 'completed',
        input: { sku: 'x' },
        results: { charge: 'ch-1', approve: { by: 'ada' }, box: 'b', tape: 't', ship: { label: 'L-1' } },
      });
      expect(info.error).toBeUndefined();
      const states = info.history.map((h) => h.state);
      expect(states[0]).toBe('running.charge');
      expect(info.history[0]).toMatchObject({ attempt: 1 });
      // The retry: same state, attempt 2, with the error that made it necessary.
      expect(info.history[1]).toMatchObject({
        state: 'running.charge',
        attempt: 2,
        error: { message: 'card declined once' },
      });
      for (const s of ['running.cool', 'running.approve', 'running.ship', 'completed']) expect(states).toContain(s);
      expect(states.some((s) => s.startsWith('running.pack(') && s.includes('box.'))).toBe(true);
      expect(states.at(-1)).toBe('completed');
      expect(info.history.at(-1)?.attempt).toBeUndefined();
      // Times come from the runtime clock and never go back.
      const at = info.history.map((h) => h.at);
      expect(at).toEqual([...at].sort((a, b) => a - b));
      expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual(1_000);
      // The child keeps its own history.
      const child = await rt
        .saga('shipping', { version: 'other', steps: [{ name: 'label', run: () => 0 }] })
        .get('o1/ship');
      expect(child).toMatchObject({
        status: 'completed',
        history: [{ state: 'running.label' }, { state: 'completed' }],
      });
    });

    it('a cancelled saga shows the cancel, what was undone and why, in its history', async () => {
      const { rt, clock } = runtime();
      const saga = rt.saga('trip', {
        steps: [
          { name: 'book', run: () => 'b-1', compensate: () => {} },
          { name: 'wait', waitFor: 'go' },
        ],
      });
      await rt.start();
      const run = saga.execute(null, { id: 't1' });
      await drive(clock, async () => (await saga.get('t1'))?.state === 'running.wait');
      await saga.cancel('t1', 'changed my mind');
      expect((await run).status).toBe('cancelled');
      const info = (await saga.get('t1')) as SagaInfo;
      expect(info).toMatchObject({
        status: 'cancelled',
        state: 'cancelled',
        failedStep: 'wait',
        reason: 'changed my mind',
        compensated: ['book'],
        error: { code: 'CANCELLED' },
      });
      expect(info.history.map((h) => h.state)).toEqual([
        'running.book',
        'running.wait',
        'cancelling.book',
        'cancelled',
      ]);
      expect(info.history[2]).toMatchObject({ error: { code: 'CANCELLED' } });
      expect(info.history[3]).toMatchObject({ error: { code: 'CANCELLED' } });
    });

    it('list pages newest first with a cursor, filters by status, and refuses bad options naming them', async () => {
      const { rt, clock } = runtime();
      const saga = rt.saga('pay', {
        steps: [
          {
            name: 'charge',
            run: (ctx) => {
              if ((ctx.input as { fail?: boolean }).fail) throw new Error('no');
              return 1;
            },
            compensate: () => {},
          },
        ],
      });
      await rt.start();
      for (let i = 0; i < 5; i++) {
        await saga.execute({ fail: i % 2 === 1 }, { id: `p${i}` });
        await clock.advance(10);
      }
      const first = await saga.list({ limit: 2 });
      expect(first.items.map((s) => s.id)).toEqual(['p4', 'p3']);
      expect(first.items[1]).toMatchObject({ status: 'compensated', error: { message: 'no' } });
      expect(first.next).toEqual(expect.any(String));
      const second = await saga.list({ limit: 2, after: first.next });
      expect(second.items.map((s) => s.id)).toEqual(['p2', 'p1']);
      const third = await saga.list({ limit: 2, after: second.next });
      expect(third.items.map((s) => s.id)).toEqual(['p0']);
      expect(third.next).toBeUndefined();
      expect((await saga.list()).items).toHaveLength(5);
      const oldest = await saga.list({ limit: 3, order: 'oldest' });
      expect(oldest.items.map((s) => s.id)).toEqual(['p0', 'p1', 'p2']);
      const later = await saga.list({ limit: 3, order: 'oldest', after: oldest.next });
      expect(later.items.map((s) => s.id)).toEqual(['p3', 'p4']);
      expect(later.next).toBeUndefined();
      expect((await saga.list({ order: 'oldest', status: 'compensated' })).items.map((s) => s.id)).toEqual([
        'p1',
        'p3',
      ]);
      await expect(saga.list({ order: 'up' as never })).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        message: expect.stringMatching(/'order' must be one of newest, oldest, got 'up'/),
      });
      const failed = await saga.list({ status: 'compensated' });
      expect(failed.items.map((s) => s.id)).toEqual(['p3', 'p1']);
      // The failed step itself had nothing to undo: straight to compensated, with the step's error.
      expect(failed.items[0]?.history.map((h) => h.state)).toEqual(['running.charge', 'compensated']);
      expect(failed.items[0]?.history[1]).toMatchObject({ error: { message: 'no' } });
      await expect(saga.list({ status: 'done' as never })).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        message: expect.stringMatching(/'status' must be one of .*, got 'done'/),
      });
      await expect(saga.list({ limit: 0 })).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        message: expect.stringMatching(/'limit' must be an integer from 1 to 1000, got 0/),
      });
      await expect(saga.list({ after: 'nonsense' })).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        message: expect.stringMatching(/'after' must be the next of an earlier page, got 'nonsense'/),
      });
      await expect(saga.list({ page: 2 } as never)).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        message: expect.stringMatching(/'page' is not a list option/),
      });
      await expect(saga.get(42 as never)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    });
  });
}

describe('saga get history is kept bounded', () => {
  it('a step retried many times keeps the first entry and the newest ones', async () => {
    const { appendHistory, MAX_HISTORY } = await import('../../src/actors/saga/history.js');
    const history: { state: string; at: number; attempt?: number }[] = [];
    for (let i = 1; i <= MAX_HISTORY + 50; i++) appendHistory(history, { running: 'a' }, i, i, undefined);
    expect(history).toHaveLength(MAX_HISTORY);
    expect(history[0]).toMatchObject({ state: 'running.a', attempt: 1 });
    expect(history.at(-1)).toMatchObject({ attempt: MAX_HISTORY + 50 });
    // The same state and attempt again (a deadline moved): no new entry.
    appendHistory(history, { running: 'a' }, 9_999, MAX_HISTORY + 50, undefined);
    expect(history).toHaveLength(MAX_HISTORY);
    void until;
  });
});
