import { isFinalSagaStatus } from '../../core/states.js';
import type { SagaRecord, SagaSignal, SagaStore } from '../sagaStore.js';

/** True when `a` comes before `b` newest first: created later, or at once with a greater id. */
function newer(a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): boolean {
  return a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);
}

/**
 * Saga records in maps, copied on the way in and out as a real store would.
 * Finished sagas are kept by the same rule as in the durable stores, so
 * `execute` with the id of a finished saga returns its stored result on every
 * store instead of running the steps again.
 */
export function memorySagas(): SagaStore {
  const running = new Map<string, SagaRecord>();
  const finished = new Map<string, SagaRecord>();
  const signals = new Map<string, SagaSignal[]>();
  let seq = 0;
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
      signals.delete(k);
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
    async listSagas(saga, q) {
      const oldest = q.order === 'oldest';
      const out: SagaRecord[] = [];
      for (const map of [running, finished]) {
        for (const r of map.values()) {
          if (r.saga !== saga || (q.status !== undefined && r.status !== q.status)) continue;
          if (q.after && !(oldest ? newer(r, q.after) : newer(q.after, r))) continue;
          out.push(r);
        }
      }
      return out
        .sort((a, b) => (newer(a, b) === oldest ? 1 : -1))
        .slice(0, q.limit)
        .map((r) => ({ ...r }));
    },
    async pruneSagas(saga, rule) {
      const mine = [...finished.values()]
        .filter((r) => r.saga === saga && r.status === rule.status)
        .sort((a, b) => b.updatedAt - a.updatedAt || (b.id < a.id ? -1 : 1));
      const doomed = mine
        .filter(
          (r, i) =>
            (rule.keep !== undefined && i >= rule.keep) || (rule.before !== undefined && r.updatedAt < rule.before),
        )
        .reverse()
        .slice(0, rule.limit);
      for (const r of doomed) finished.delete(key(r.saga, r.id));
      return { deleted: doomed.length, busy: false };
    },
    async sendSagaSignal(signal) {
      const k = key(signal.saga, signal.id);
      let list = signals.get(k);
      if (!list) signals.set(k, (list = []));
      list.push({ ...signal, seq: ++seq });
    },
    async sagaSignals(saga, ids) {
      const out: SagaSignal[] = [];
      for (const id of ids) for (const s of signals.get(key(saga, id)) ?? []) out.push({ ...s });
      return out.sort((a, b) => a.seq - b.seq);
    },
  };
}
