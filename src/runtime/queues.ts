import type { Runtime } from './createRuntime.js';
import { KeelError } from './errors.js';

/** Options of `rt.queue` (see DESIGN.md). */
export interface QueueOptions {
  [option: string]: unknown;
}

/** A durable task queue. */
export interface Queue {
  readonly name: string;
}

/** Returns the runtime's queue called `name`, creating it on first use. */
export function queueFor(_rt: Runtime<any>, name: string, _options?: QueueOptions): Queue {
  throw new KeelError('NOT_IMPLEMENTED', `queue('${name}'): task queues are not built yet`);
}
