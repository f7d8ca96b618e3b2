/**
 * A part of the runtime with work to resume at start and to finish at stop
 * (queues, sagas). Registered in creation order; started in that order,
 * stopped in reverse.
 */
export interface Component {
  readonly kind: string;
  readonly name: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}
