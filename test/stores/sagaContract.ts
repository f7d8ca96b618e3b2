import { beforeEach, describe, expect, it } from 'vitest';
import type { SagaRecord } from '../../src/stores/sagaStore.js';
import type { Store } from '../../src/stores/store.js';
import { openedStore, type StoreFactory } from './contract.js';

const record = (over: Partial<SagaRecord> = {}): SagaRecord => ({
  saga: 'checkout',
  id: 's1',
  version: 'a+,b',
  status: 'running',
  state: JSON.stringify({ running: 'a' }),
  context: JSON.stringify({ sagaId: 's1', input: { n: 1 }, results: {}, compensated: [] }),
  attempt: 1,
  notBefore: undefined,
  createdAt: 100,
  updatedAt: 100,
  ...over,
});

/** The saga half of the store contract: every store keeps saga records the same way. */
export function sagaStoreContract(name: string, factory: StoreFactory): void {
  describe(`saga store contract: ${name}`, () => {
    const opened = openedStore(factory);
    let store: Store;
    beforeEach(() => {
      store = opened();
    });

    it('saves, loads and replaces a record by saga and id', async () => {
      expect(await store.loadSaga('checkout', 's1')).toBeUndefined();
      await store.saveSaga(record());
      expect(await store.loadSaga('checkout', 's1')).toEqual(record());
      const later = record({ state: JSON.stringify({ running: 'b' }), attempt: 3, notBefore: 500, updatedAt: 200 });
      await store.saveSaga(later);
      expect(await store.loadSaga('checkout', 's1')).toEqual(later);
      expect(await store.loadSaga('other', 's1')).toBeUndefined();
    });

    it('lists unfinished records of one saga, oldest first', async () => {
      await store.saveSaga(record({ id: 'new', createdAt: 300 }));
      await store.saveSaga(record({ id: 'old', createdAt: 100, status: 'compensating' }));
      await store.saveSaga(record({ id: 'done', createdAt: 50, status: 'completed', state: '"completed"' }));
      await store.saveSaga(record({ id: 'gone', createdAt: 60, status: 'compensated', state: '"compensated"' }));
      await store.saveSaga(record({ id: 'bad', createdAt: 70, status: 'failed', state: '"failed"' }));
      await store.saveSaga(record({ saga: 'other', id: 'x', createdAt: 10 }));
      expect((await store.unfinishedSagas('checkout')).map((r) => r.id)).toEqual(['old', 'new']);
      expect((await store.loadSaga('checkout', 'done'))?.status).toBe('completed');
    });

    it('keeps a finished saga however many finish after it (the same rule on every store)', async () => {
      await store.saveSaga(record({ id: 'first', status: 'completed' }));
      const later = Array.from({ length: 10_001 }, (_, i) => record({ id: `later-${i}`, status: 'completed' }));
      await Promise.all(later.map((r) => store.saveSaga(r)));
      expect(await store.loadSaga('checkout', 'first')).toMatchObject({ id: 'first', status: 'completed' });
    });

    it('a finished record leaves the unfinished list', async () => {
      await store.saveSaga(record());
      await store.saveSaga(record({ status: 'completed', state: '"completed"', updatedAt: 300 }));
      expect(await store.unfinishedSagas('checkout')).toEqual([]);
      expect((await store.loadSaga('checkout', 's1'))?.status).toBe('completed');
    });

    it('keeps what many concurrent saves wrote, the last save of each id winning', async () => {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.saveSaga(record({ id: `c${i % 10}`, attempt: i + 1, createdAt: i })),
        ),
      );
      const all = await store.unfinishedSagas('checkout');
      expect(all).toHaveLength(10);
      for (const r of all) expect(r.attempt).toBe(41 + Number(r.id.slice(1)));
    });

    it('copies records: changing a returned record changes nothing stored', async () => {
      await store.saveSaga(record());
      const got = (await store.loadSaga('checkout', 's1')) as SagaRecord;
      got.status = 'failed';
      expect((await store.loadSaga('checkout', 's1'))?.status).toBe('running');
    });

    it('keeps a cancelled saga as finished', async () => {
      await store.saveSaga(record());
      await store.saveSaga(record({ status: 'cancelled', state: '"cancelled"', updatedAt: 300 }));
      expect(await store.unfinishedSagas('checkout')).toEqual([]);
      expect((await store.loadSaga('checkout', 's1'))?.status).toBe('cancelled');
    });

    it('keeps signals per saga in the order they were sent, until the saga ends', async () => {
      await store.saveSaga(record());
      await store.saveSaga(record({ id: 's2' }));
      await store.sendSagaSignal({ saga: 'checkout', id: 's1', name: 'paid', payload: '{"n":1}', at: 10 });
      await store.sendSagaSignal({ saga: 'checkout', id: 's2', name: 'paid', payload: '2', at: 11 });
      await store.sendSagaSignal({ saga: 'checkout', id: 's1', name: '$cancel', payload: 'null', at: 12 });
      await store.sendSagaSignal({ saga: 'other', id: 's1', name: 'paid', payload: '3', at: 13 });
      const mine = await store.sagaSignals('checkout', ['s1']);
      expect(mine.map(({ id, name, payload, at }) => ({ id, name, payload, at }))).toEqual([
        { id: 's1', name: 'paid', payload: '{"n":1}', at: 10 },
        { id: 's1', name: '$cancel', payload: 'null', at: 12 },
      ]);
      expect((mine[0]?.seq ?? 0) < (mine[1]?.seq ?? 0)).toBe(true);
      expect((await store.sagaSignals('checkout', ['s1', 's2'])).map((g) => g.payload)).toEqual([
        '{"n":1}',
        '2',
        'null',
      ]);
      expect(await store.sagaSignals('checkout', [])).toEqual([]);
      // A signal for a saga not saved yet is kept too: it may be sent before the saga's first checkpoint lands.
      await store.sendSagaSignal({ saga: 'checkout', id: 'soon', name: 'paid', payload: '4', at: 14 });
      expect(await store.sagaSignals('checkout', ['soon'])).toHaveLength(1);
      await store.saveSaga(record({ status: 'completed', state: '"completed"', updatedAt: 300 }));
      expect(await store.sagaSignals('checkout', ['s1'])).toEqual([]);
      expect(await store.sagaSignals('checkout', ['s2'])).toHaveLength(1);
      expect(await store.sagaSignals('other', ['s1'])).toHaveLength(1);
    });
  });
}
