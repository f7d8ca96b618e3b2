import { describe, expectTypeOf, it } from 'vitest';
import type { SagaResults } from '../../src/index.js';

describe('saga result types', () => {
  // Checked by `tsc` (the suite's typecheck); the run only confirms the file loads.
  it('type each result by its step: a call its return, a sleep undefined, a group its branches', () => {
    const steps = [
      { name: 'order', run: () => ({ id: 'o' }) },
      { name: 'wait', sleepMs: 1 },
      { name: 'paid', waitFor: 'payment.confirmed' },
      {
        parallel: [
          { name: 'reserve', run: async () => 3 },
          { name: 'authorise', run: () => 'a' as const },
        ],
      },
    ] as const;
    type R = SagaResults<typeof steps>;
    expectTypeOf<R['order']>().toEqualTypeOf<{ id: string }>();
    expectTypeOf<R['reserve']>().toEqualTypeOf<number>();
    expectTypeOf<R['authorise']>().toEqualTypeOf<'a'>();
    expectTypeOf<R['wait']>().toEqualTypeOf<undefined>();
    expectTypeOf<keyof R>().toEqualTypeOf<'order' | 'wait' | 'paid' | 'reserve' | 'authorise'>();
  });
});
