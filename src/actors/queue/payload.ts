import { KeelError } from '../../runtime/errors.js';
import { jsonProblem } from '../json.js';

/**
 * The JSON text of a task payload, or a `KeelError` `INVALID_PAYLOAD` naming
 * the first value JSON cannot carry faithfully (see `jsonProblem`): a task
 * must come back to the handler exactly as it was enqueued, from any store.
 */
export function encodePayload(queue: string, payload: unknown): string {
  const problem = jsonProblem(payload, 'payload');
  if (problem) {
    throw new KeelError('INVALID_PAYLOAD', `queue('${queue}').enqueue: ${problem}; payloads must be plain JSON`);
  }
  return JSON.stringify(payload);
}
