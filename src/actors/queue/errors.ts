import { KeelError } from '../../runtime/errors.js';

/** The abort reason of `task.signal` when the task's lease was lost (another worker may hold it now). */
export class LeaseLostError extends KeelError {
  constructor(queue: string, id: string) {
    super('LEASE_LOST', `queue('${queue}'): task ${id} lost its lease; its result will be ignored`);
    this.name = 'LeaseLostError';
  }
}

/** The failure of an attempt that ran longer than the queue's `timeoutMs`. */
export class TaskTimeoutError extends KeelError {
  constructor(queue: string, id: string, ms: number) {
    super('TASK_TIMEOUT', `queue('${queue}'): task ${id} did not settle within ${ms} ms`);
    this.name = 'TaskTimeoutError';
  }
}

/** A readable one-line description of whatever a handler threw (it need not be an Error). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    if (typeof error === 'string') return `thrown string: ${error}`;
    const json = JSON.stringify(error);
    return `thrown ${typeof error}: ${json ?? String(error)}`;
  } catch {
    return `thrown ${typeof error} (not printable)`;
  }
}
