import { describe, expect, it, vi } from 'vitest';
import { createRuntime, type SagaStep, sqliteStore } from '../../src/index.js';
import { settle } from '../../src/testing/index.js';
import { sagaRuntimes } from '../fixtures/sagaRuntimes.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';

const { runtime, tempDb, cleanups, track } = sagaRuntimes('sagaVersions');

/** Version 1 of a checkout: it waits for a payment signal. Version 2 pays by itself and ships. */
const v1 = (journal: string[]) =>
  [
    { name: 'createOrder', run: () => journal.push('v1 create') && 'o1' },
    { name: 'payment', waitFor: 'payment.confirmed' },
  ] as const satisfies readonly SagaStep[];
const v2 = (journal: string[]) =>
  [
    { name: 'createOrder', run: () => journal.push('v2 create') && 'o2' },
    { name: 'charge', run: () => journal.push('v2 charge') && 'c2' },
    { name: 'ship', run: () => journal.push('v2 ship') && 's2' },
  ] as const satisfies readonly SagaStep[];

/** Starts saga 'old' on version 1 (unversioned, as the first deploy had it) and stops while it waits. */
async function startOnVersion1(path: string, journal: string[]) {
  const first = runtime({ store: sqliteStore({ path }) });
  const saga = first.saga('checkout', { steps: v1(journal) });
  await first.start();
  void saga.execute({ n: 1 }, { id: 'old' }).catch(() => {});
  await settle();
  expect(saga.stateOf('old')).toEqual({ running: 'payment' });
  await first.stop();
}

describe('saga versions', () => {
  it('a saga started on version 1 finishes on version 1 after a restart with version 2 beside it', async () => {
    const path = tempDb();
    const journal: string[] = [];
    await startOnVersion1(path, journal);

    const onError = vi.fn();
    const rt = runtime({ store: sqliteStore({ path }), onError });
    const one = rt.saga('checkout', { steps: v1(journal) });
    const two = rt.saga('checkout', { version: 2, steps: v2(journal) });
    expect(two.version).toBe('2');
    await rt.start();
    await settle();
    expect(one.stateOf('old')).toEqual({ running: 'payment' });
    expect(two.stateOf('old')).toBeUndefined();
    // The signal goes through either handle to the version the saga runs on.
    await two.signal('old', 'payment.confirmed', { paid: true });
    // execute with its id on version 2 joins it where it runs.
    expect(await two.execute({ n: 1 }, { id: 'old' })).toMatchObject({
      status: 'completed',
      results: { createOrder: 'o1', payment: { paid: true } },
    });
    // New sagas start on the version whose handle starts them.
    expect(await two.execute({ n: 2 }, { id: 'new' })).toMatchObject({
      status: 'completed',
      results: { createOrder: 'o2', charge: 'c2', ship: 's2' },
    });
    expect(journal).toEqual(['v1 create', 'v2 create', 'v2 charge', 'v2 ship']);
    // Each version resumed only its own: nothing to report.
    expect(onError).not.toHaveBeenCalled();
  });

  it('a stored saga of a version no definition has is reported (onError and a bus event), not skipped', async () => {
    const path = tempDb();
    const journal: string[] = [];
    await startOnVersion1(path, journal);

    const onError = vi.fn();
    const rt = runtime({ store: sqliteStore({ path }), onError });
    const unknown: unknown[] = [];
    rt.bus.subscribe('saga.checkout.versionUnknown', (p) => {
      unknown.push(p);
    });
    const two = rt.saga('checkout', { version: 2, steps: v2(journal) });
    await rt.start();
    expect(onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'SAGA_VERSION_MISMATCH', message: expect.stringContaining('[2]') }),
      expect.stringContaining("'old'"),
    );
    expect(unknown).toEqual([{ sagaId: 'old', version: 'createOrder,payment?payment.confirmed', registered: ['2'] }]);
    await expect(two.execute({ n: 1 }, { id: 'old' })).rejects.toMatchObject({ code: 'SAGA_VERSION_MISMATCH' });
    await expect(two.cancel('old')).rejects.toMatchObject({ code: 'SAGA_VERSION_MISMATCH' });
    // Left as it was for a runtime that has version 1.
    await rt.stop();
    const later = runtime({ store: sqliteStore({ path }) });
    const one = later.saga('checkout', { steps: v1(journal) });
    await later.start();
    expect(await one.cancel('old', 'too old')).toMatchObject({ status: 'cancelled', reason: 'too old' });
    expect(journal).toEqual(['v1 create']);
  });

  it('refuses a second definition of a name without a version of its own, or with a version already there', () => {
    const rt = runtime();
    rt.saga('checkout', { steps: v1([]) });
    expect(() => rt.saga('checkout', { steps: v2([]) })).toThrow(expect.objectContaining({ code: 'DUPLICATE_NAME' }));
    rt.saga('checkout', { version: 'b', steps: v2([]) });
    expect(() => rt.saga('checkout', { version: 'b', steps: v2([]) })).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_NAME', message: expect.stringContaining('[b]') }),
    );
    for (const version of ['', Number.NaN, {}, true]) {
      expect(() => rt.saga('other', { version: version as never, steps: v1([]) })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining("'version'") }),
      );
    }
  });
});

describe.each(sharedStoreKinds().filter((k) => k.name === 'postgres' && k.available))(
  'versions on a $name store shared by runtimes',
  (kind) => {
    it('a runtime adopts only the sagas of versions it has', async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const journal: string[] = [];
      const first = createRuntime({ store: make(), onError: () => {} });
      track(first);
      const one = first.saga('checkout', { steps: v1(journal), shutdownGraceMs: 0 });
      await first.start();
      void one.execute(null, { id: 'old' }).catch(() => {});
      await vi.waitFor(() => expect(one.stateOf('old')).toEqual({ running: 'payment' }));
      await first.stop();

      const onError = vi.fn();
      const onlyTwo = createRuntime({ store: make(), onError });
      track(onlyTwo);
      const two = onlyTwo.saga('checkout', { version: 2, steps: v2(journal) });
      await onlyTwo.start();
      expect(two.running).toBe(0);
      expect(onError).toHaveBeenCalledWith(
        expect.objectContaining({ code: 'SAGA_VERSION_MISMATCH' }),
        expect.anything(),
      );

      const both = createRuntime({ store: make(), onError: () => {} });
      track(both);
      const again = both.saga('checkout', { steps: v1(journal) });
      both.saga('checkout', { version: 2, steps: v2(journal) });
      await both.start();
      expect(again.running).toBe(1);
      await again.signal('old', 'payment.confirmed', 1);
      expect(await again.execute(null, { id: 'old' })).toMatchObject({ status: 'completed' });
    });
  },
);
