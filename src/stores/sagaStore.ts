/** How far a saga got. `running`/`compensating` are unfinished; the rest are final. */
export type SagaRecordStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'failed';

/** A saga's progress as stored at every step boundary. */
export interface SagaRecord {
  saga: string;
  id: string;
  /** The definition's shape (step names, which can be undone); a resume into a changed definition is refused. */
  version: string;
  status: SagaRecordStatus;
  /** The machine state value, as JSON. */
  state: string;
  /** The machine context (input, results, errors, compensated steps), as JSON. */
  context: string;
  /** The attempt of the step in progress (1-based). */
  attempt: number;
  /** When the next attempt of that step may start: a backoff deadline kept as data, so a restart honours it. */
  notBefore: number | undefined;
  createdAt: number;
  updatedAt: number;
}

/** The saga half of a store. */
export interface SagaStore {
  /** Inserts or replaces the record of (`saga`, `id`). */
  saveSaga(record: SagaRecord): Promise<void>;
  loadSaga(saga: string, id: string): Promise<SagaRecord | undefined>;
  /** Every record of `saga` that is still running or compensating, oldest first. */
  unfinishedSagas(saga: string): Promise<SagaRecord[]>;
}
