import { isFinalSagaStatus } from '../../core/states.js';
import type { SagaRecord, SagaStore } from '../sagaStore.js';

/**
 * Saga records in maps, copied on the way in and out as a real store would.
 * Finished sagas are kept (so `execute` with their id returns the stored
 * result) up to `finishedLimit`, oldest dropped first: nothing here survives
 * the process anyway, and an unbounded map would grow with every saga.
 */
export function memorySagas(finishedLimit = 10_000): SagaStore {
  const running = new Map<string, SagaRecord>();
  const finished = new Map<string, SagaRecord>();
  const key = (saga: string, id: string) => `${saga}\u0000${id}`;
  return {
    async saveSaga(record) {
      const k = key(record.saga, record.id);
      if (!isFinalSagaStatus(record.status)) {
        running.set(k, { ...record });
        return;
      }
      running.delete(k);
      finished.delete(k);
      finished.set(k, { ...record });
      if (finished.size > finishedLimit) finished.delete(finished.keys().next().value as string);
    },
    async loadSaga(saga, id) {
      const k = key(saga, id);
      const r = running.get(k) ?? finished.get(k);
      return r && { ...r };
    },
    async unfinishedSagas(saga) {
      const out: SagaRecord[] = [];
      for (const r of running.values()) if (r.saga === saga) out.push({ ...r });
      return out.sort((a, b) => a.createdAt - b.createdAt);
    },
  };
}
