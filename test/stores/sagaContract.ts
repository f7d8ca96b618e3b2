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

    it('keeps the trace context of a record through later saves and into the unfinished list', async () => {
      const trace = JSON.stringify({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
      await store.saveSaga(record({ trace }));
      await store.saveSaga(record({ trace, attempt: 2, updatedAt: 200 }));
      expect(await store.loadSaga('checkout', 's1')).toEqual(record({ trace, attempt: 2, updatedAt: 200 }));
      expect((await store.unfinishedSagas('checkout'))[0]?.trace).toBe(trace);
      await store.saveSaga(record({ id: 's2' }));
      expect(await store.loadSaga('checkout', 's2')).not.toHaveProperty('trace');
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

    it('keeps the history and the branch attempts written with a checkpoint', async () => {
      const history = JSON.stringify([{ state: 'running.a', at: 100, attempt: 1 }]);
      const branches = JSON.stringify({ b: { attempt: 2, notBefore: 900 } });
      await store.saveSaga(record({ history, branches }));
      expect(await store.loadSaga('checkout', 's1')).toEqual(record({ history, branches }));
      await store.saveSaga(record({ history: '[]', updatedAt: 200 }));
      const later = await store.loadSaga('checkout', 's1');
      expect(later?.history).toBe('[]');
      expect(later?.branches).toBeUndefined();
    });

    it('lists records newest first, page after page from a cursor, with or without a status', async () => {
      const done = { status: 'completed' as const, state: '"completed"' };
      await store.saveSaga(record({ id: 'a', createdAt: 100 }));
      await store.saveSaga(record({ id: 'b', createdAt: 200, ...done }));
      await store.saveSaga(record({ id: 'c', createdAt: 200 }));
      await store.saveSaga(record({ id: 'd', createdAt: 300, ...done }));
      await store.saveSaga(record({ saga: 'other', id: 'x', createdAt: 400 }));
      const ids = (rs: SagaRecord[]) => rs.map((r) => r.id);
      expect(ids(await store.listSagas('checkout', { limit: 10 }))).toEqual(['d', 'c', 'b', 'a']);
      const first = await store.listSagas('checkout', { limit: 2 });
      expect(ids(first)).toEqual(['d', 'c']);
      const last = first.at(-1) as SagaRecord;
      expect(ids(await store.listSagas('checkout', { limit: 2, after: last }))).toEqual(['b', 'a']);
      expect(ids(await store.listSagas('checkout', { limit: 10, status: 'completed' }))).toEqual(['d', 'b']);
      expect(
        ids(await store.listSagas('checkout', { limit: 10, status: 'completed', after: { createdAt: 300, id: 'd' } })),
      ).toEqual(['b']);
      expect(await store.listSagas('checkout', { limit: 10, status: 'failed' })).toEqual([]);
      expect(await store.listSagas('checkout', { limit: 10, after: { createdAt: 100, id: 'a' } })).toEqual([]);
    });

    it('lists records oldest first on request, paging up from a cursor, with or without a status', async () => {
      const done = { status: 'completed' as const, state: '"completed"' };
      await store.saveSaga(record({ id: 'a', createdAt: 100 }));
      await store.saveSaga(record({ id: 'b', createdAt: 200, ...done }));
      await store.saveSaga(record({ id: 'c', createdAt: 200 }));
      await store.saveSaga(record({ id: 'd', createdAt: 300, ...done }));
      await store.saveSaga(record({ saga: 'other', id: 'x', createdAt: 50 }));
      const ids = (rs: SagaRecord[]) => rs.map((r) => r.id);
      const oldest = { order: 'oldest' as const };
      expect(ids(await store.listSagas('checkout', { limit: 10, ...oldest }))).toEqual(['a', 'b', 'c', 'd']);
      const first = await store.listSagas('checkout', { limit: 2, ...oldest });
      expect(ids(first)).toEqual(['a', 'b']);
      expect(ids(await store.listSagas('checkout', { limit: 2, after: first.at(-1), ...oldest }))).toEqual(['c', 'd']);
      expect(ids(await store.listSagas('checkout', { limit: 10, status: 'completed', ...oldest }))).toEqual(['b', 'd']);
      expect(
        ids(
          await store.listSagas('checkout', {
            limit: 10,
            status: 'completed',
            after: { createdAt: 200, id: 'b' },
            ...oldest,
          }),
        ),
      ).toEqual(['d']);
      expect(await store.listSagas('checkout', { limit: 10, after: { createdAt: 300, id: 'd' }, ...oldest })).toEqual(
        [],
      );
      // The default is unchanged: newest first.
      expect(ids(await store.listSagas('checkout', { limit: 1, order: 'newest' }))).toEqual(['d']);
    });

    it('prunes finished records of one status beyond the newest `keep` or finished before `before`, in batches', async () => {
      const finished = (id: string, updatedAt: number, status: 'completed' | 'failed' = 'completed') =>
        record({ id, status, state: JSON.stringify(status), updatedAt });
      for (let i = 1; i <= 6; i++) await store.saveSaga(finished(`c${i}`, i * 100));
      await store.saveSaga(finished('f1', 50, 'failed'));
      await store.saveSaga(record({ id: 'live', updatedAt: 10 }));
      await store.saveSaga(
        record({ saga: 'other', id: 'c1', status: 'completed', state: '"completed"', updatedAt: 1 }),
      );
      const left = async () => (await store.listSagas('checkout', { limit: 100 })).map((r) => r.id).sort();
      // Keep the newest 3 completed: c1..c3 go, the oldest first, at most 2 per call.
      expect(await store.pruneSagas('checkout', { status: 'completed', keep: 3, before: undefined, limit: 2 })).toEqual(
        {
          deleted: 2,
          busy: false,
        },
      );
      expect(await left()).toEqual(['c3', 'c4', 'c5', 'c6', 'f1', 'live']);
      expect(
        (await store.pruneSagas('checkout', { status: 'completed', keep: 3, before: undefined, limit: 2 })).deleted,
      ).toBe(1);
      expect(
        (await store.pruneSagas('checkout', { status: 'completed', keep: 3, before: undefined, limit: 2 })).deleted,
      ).toBe(0);
      // By age: finished before 500 go, whatever the count.
      expect(
        (await store.pruneSagas('checkout', { status: 'completed', keep: undefined, before: 500, limit: 10 })).deleted,
      ).toBe(1);
      expect(await left()).toEqual(['c5', 'c6', 'f1', 'live']);
      // No limit given: nothing goes. Another status and another saga are untouched; running records never go.
      expect(
        (await store.pruneSagas('checkout', { status: 'completed', keep: undefined, before: undefined, limit: 10 }))
          .deleted,
      ).toBe(0);
      expect(
        (await store.pruneSagas('checkout', { status: 'failed', keep: 0, before: undefined, limit: 10 })).deleted,
      ).toBe(1);
      expect((await store.pruneSagas('checkout', { status: 'running', keep: 0, before: 1e9, limit: 10 })).deleted).toBe(
        0,
      );
      expect(await left()).toEqual(['c5', 'c6', 'live']);
      expect(await store.loadSaga('other', 'c1')).toBeDefined();
    });

    it('a completed saga can be rewritten as compensated (a child undone as a whole by its parent)', async () => {
      await store.saveSaga(record({ status: 'completed', state: '"completed"', updatedAt: 200 }));
      await store.saveSaga(record({ status: 'compensated', state: '"compensated"', updatedAt: 300 }));
      expect(await store.loadSaga('checkout', 's1')).toMatchObject({ status: 'compensated', updatedAt: 300 });
    });
  });
}
