import type { SagaRecord, SagaStore } from './sagaStore.js';

/** Saga records in a map, copied on the way in and out as a real store would. */
export function memorySagas(): SagaStore {
  const records = new Map<string, SagaRecord>();
  const key = (saga: string, id: string) => `${saga}\u0000${id}`;
  return {
    async saveSaga(record) {
      records.set(key(record.saga, record.id), { ...record });
    },
    async loadSaga(saga, id) {
      const r = records.get(key(saga, id));
      return r && { ...r };
    },
    async unfinishedSagas(saga) {
      const out: SagaRecord[] = [];
      for (const r of records.values()) {
        if (r.saga === saga && (r.status === 'running' || r.status === 'compensating')) out.push({ ...r });
      }
      return out.sort((a, b) => a.createdAt - b.createdAt);
    },
  };
}
