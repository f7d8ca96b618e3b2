import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, type SagaInfo, type SagaStep } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { until } from '../fixtures/wait.js';

/** Regression tests of the defects filed with issue #17, on every store. */
for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`saga defects of issue #17 (${kind.name})`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    const runtimes: Runtime<any>[] = [];
    afterEach(async () => {
      for (const rt of runtimes.splice(0)) await rt.stop().catch(() => {});
      for (const c of cleanups.splice(0)) await c();
    });
    const data = () => {
      const d = kind.fresh();
      cleanups.push(d.cleanup);
      return d;
    };
    const runtime = (store: ReturnType<ReturnType<typeof data>['make']>, clock = new TestClock(1_000)) => {
      const rt = createRuntime({ store, clock, onError: () => {} });
      runtimes.push(rt);
      return rt;
    };

    it('a completed child saga undone as a whole by its parent ends compensated and publishes saga.<child>.compensated', async () => {
      const rt = runtime(data().make());
      const journal: string[] = [];
      const events: { type: string; payload: unknown }[] = [];
      rt.bus.subscribe('saga.shipping.>', (payload, e) => {
        events.push({ type: e.type, payload });
      });
      const shipping = rt.saga('shipping', {
        steps: [
          { name: 'pick', run: () => 'picked', compensate: () => journal.push('unpick') },
          { name: 'label', run: () => 'L1', compensate: () => journal.push('unlabel') },
        ],
      });
      const checkout = rt.saga('checkout', {
        steps: [
          { name: 'ship', saga: 'shipping', input: () => ({}) },
          {
            name: 'charge',
            run: () => {
              throw new Error('card declined');
            },
          },
        ] as const satisfies readonly SagaStep[],
      });
      await rt.start();
      expect(await checkout.execute(null, { id: 'p1' })).toMatchObject({
        status: 'compensated',
        compensated: ['ship'],
      });
      await settle();
      expect(journal).toEqual(['unlabel', 'unpick']);
      // Before the fix the child's record stayed 'completed' and nothing was published.
      const child = (await shipping.get('p1/ship')) as SagaInfo;
      expect(child).toMatchObject({
        status: 'compensated',
        state: 'compensated',
        compensated: ['label', 'pick'],
        error: { message: 'card declined' },
      });
      expect(child.history.map((h) => h.state)).toEqual([
        'running.pick',
        'running.label',
        'completed',
        'compensating.label',
        'compensating.pick',
        'compensated',
      ]);
      expect(await shipping.execute(null, { id: 'p1/ship' })).toMatchObject({
        status: 'compensated',
        compensated: ['label', 'pick'],
      });
      const compensated = events.filter((e) => e.type === 'saga.shipping.compensated');
      expect(compensated).toHaveLength(1);
      expect(compensated[0]?.payload).toMatchObject({ sagaId: 'p1/ship', compensated: ['label', 'pick'] });
      expect((await shipping.list({ status: 'compensated' })).items.map((s) => s.id)).toEqual(['p1/ship']);
    });

    it.skipIf(kind.name === 'memory')(
      'a parallel branch retrying when its runtime stops resumes at its attempt and backoff, not at attempt 1',
      async () => {
        const shared = data();
        const clock = new TestClock(1_000);
        const attempts: string[] = [];
        const define = (rt: Runtime<any>, who: string) =>
          rt.saga('pack', {
            shutdownGraceMs: 0,
            steps: [
              {
                name: 'group',
                parallel: [
                  { name: 'box', run: () => 'b' },
                  {
                    name: 'tape',
                    retry: { maxAttempts: 5, initialDelayMs: 10_000, multiplier: 1, jitter: false },
                    run: (ctx) => {
                      attempts.push(`${who}:${ctx.attempt}@${clock.now()}`);
                      if (who === 'A' || ctx.attempt < 4) throw new Error(`tape jammed (${ctx.attempt})`);
                      return 't';
                    },
                  },
                ],
              },
            ] as const satisfies readonly SagaStep[],
          });
        const a = runtime(shared.make(), clock);
        const packA = define(a, 'A');
        await a.start();
        void packA.execute(null, { id: 'k1' }).catch(() => {});
        await until(() => attempts.length === 1, 10_000, 'the first attempt');
        for (let i = 0; i < 50 && attempts.length < 2; i++) {
          await clock.advance(5_000);
          await settle();
          await new Promise((r) => setTimeout(r, 2));
        }
        expect(attempts).toEqual(['A:1@1000', 'A:2@11000']);
        // Its third attempt is due at 21,000: the runtime stops (a crash keeps the same checkpoint) before then.
        await settle();
        await new Promise((r) => setTimeout(r, 20));
        await a.stop();
        const b = runtime(shared.make(), clock);
        const packB = define(b, 'B');
        await b.start();
        let result: unknown;
        void packB.execute(null, { id: 'k1' }).then((r) => (result = r));
        for (let i = 0; i < 100 && result === undefined; i++) {
          await clock.advance(1_000);
          await settle();
          await new Promise((r) => setTimeout(r, 2));
        }
        expect(result).toMatchObject({ status: 'completed', results: { box: 'b', tape: 't' } });
        // Before the fix: B started again at attempt 1 (and ran 4 more attempts).
        expect(attempts.slice(2)).toEqual(['B:3@21000', 'B:4@31000']);
        const info = (await packB.get('k1')) as SagaInfo;
        expect(info.history.filter((h) => h.state === 'running.group(tape.run)')).toEqual([
          {
            state: 'running.group(tape.run)',
            at: 1000,
            attempt: 2,
            error: expect.objectContaining({ message: 'tape jammed (1)' }),
          },
          {
            state: 'running.group(tape.run)',
            at: 11000,
            attempt: 3,
            error: expect.objectContaining({ message: 'tape jammed (2)' }),
          },
          {
            state: 'running.group(tape.run)',
            at: 21000,
            attempt: 4,
            error: expect.objectContaining({ message: 'tape jammed (3)' }),
          },
        ]);
      },
    );
  });
}
