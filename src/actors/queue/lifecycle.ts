import { getNextSnapshot } from 'xstate';
import type { TaskState } from '../../core/states.js';
import { type TaskEvent, taskMachine } from '../../machines/task.js';

const memo = new Map<string, TaskState | null>();

/**
 * Where `event` takes a task that is in `from` with `attempt` of `maxAttempts`
 * spent, as the task machine decides; undefined when the machine does not
 * allow the event there.
 *
 * The answer is memoised: the machine's only guard reads `attempt <
 * maxAttempts`, so state, event type and that one boolean determine the
 * target. The machine is consulted once per combination instead of once per
 * task (an XState transition costs microseconds; this runs for every task).
 */
export function nextTaskState(
  from: TaskState,
  event: TaskEvent,
  attempt: number,
  maxAttempts: number,
): TaskState | undefined {
  const left = attempt < maxAttempts;
  const key = `${from}|${event.type}|${left}`;
  let to = memo.get(key);
  if (to === undefined) {
    // Any attempt/maxAttempts pair with the same `left` gives the same answer.
    const snapshot = taskMachine.resolveState({
      value: from,
      context: { attempt: left ? 0 : 1, maxAttempts: 1, delayMs: 0 },
    });
    const allowed = taskMachine.getTransitionData(snapshot, event).length > 0;
    to = allowed ? (getNextSnapshot(taskMachine, snapshot, event).value as TaskState) : null;
    memo.set(key, to);
  }
  return to ?? undefined;
}
