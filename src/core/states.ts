/**
 * The states of keel's durable records, shared by the machines that decide
 * them and the stores that keep them (a store cannot import a machine).
 */

/** Where a task is in its lifecycle (the states of `taskMachine`). */
export type TaskState = 'pending' | 'active' | 'retrying' | 'succeeded' | 'dead' | 'cancelled';

/** How far a saga got: `running`/`compensating` are unfinished; the rest are the machine's final states. */
export type SagaRecordStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'failed' | 'cancelled';

/** True for a saga status that will not change again. */
export function isFinalSagaStatus(status: SagaRecordStatus): boolean {
  return status !== 'running' && status !== 'compensating';
}

/**
 * How often a holder renews a lease of `leaseMs`: three chances before it
 * runs out, so one slow renewal does not lose it.
 */
export function renewEveryMs(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}
