import type { QueueStats, TaskRecord } from './store.js';

/** A queue as recorded in a shared store. */
export interface FleetQueue {
  name: string;
  stats: QueueStats;
  /** The store's pause flag (every runtime on the store obeys it). */
  paused: boolean;
  /** The oldest dead tasks, at most the limit asked for. */
  dead: TaskRecord[];
}

/** An unfinished saga as recorded. */
export interface FleetSaga {
  saga: string;
  id: string;
  status: string;
  /** The machine state value, as stored (JSON). */
  state: string;
  updatedAt: number;
}

/** A fleet breaker (`scope: 'fleet'`) as recorded: `halfOpen` once its open period is over and a trial may run. */
export interface FleetBreaker {
  name: string;
  state: 'closed' | 'open' | 'halfOpen';
  period: number;
  failures: number;
}

/** Everything a fleet console shows of one shared store at one moment. */
export interface FleetPicture {
  queues: FleetQueue[];
  sagas: FleetSaga[];
  breakers: FleetBreaker[];
  /** Every saga name with a stored run, finished or not (at most `SAGA_NAMES_SHOWN`), in name order. */
  sagaNames?: string[];
}

/** Saga names the fleet console lists. */
export const SAGA_NAMES_SHOWN = 100;

/**
 * Read-only queries over a shared store for `keel console`: every queue, saga
 * and fleet breaker that any process recorded, without the apps' handlers.
 */
export interface FleetView {
  /** Where it reads, for titles (`schema keel on db:5432/app`); never a password. */
  readonly where: string;
  /** The picture at `now` (epoch ms): at most `deadShown` dead tasks per queue, `sagasShown` unfinished sagas. */
  read(now: number, limits: { deadShown: number; sagasShown: number }): Promise<FleetPicture>;
  close(): Promise<void>;
}
