import type { AnyMachineSnapshot, StateValue } from 'xstate';
import type { ModelPath, ModelStep } from './paths.js';

/** Makes the real system do what a model step says, and reports what state it is in. */
export interface Driver {
  /** Causes `step.event` in the real system (send, clock advance, resolve or reject a fake service). */
  send(step: ModelStep): void | Promise<void>;
  /** The state value the real system is in now. */
  observe(): StateValue | Promise<StateValue>;
  /** Extra checks after each step, e.g. on context or on effects; throw to fail. */
  check?(expected: AnyMachineSnapshot, index: number): void | Promise<void>;
}

/** Thrown when the real system leaves the path the model predicted. */
export class PathMismatchError extends Error {
  constructor(
    readonly path: ModelPath,
    readonly index: number,
    readonly expected: StateValue,
    readonly actual: StateValue,
  ) {
    super(
      `path "${path.description}": after step ${index} (${path.steps[index]?.event.type}) the model is in ${JSON.stringify(expected)} but the runtime is in ${JSON.stringify(actual)}`,
    );
    this.name = 'PathMismatchError';
  }
}

/** Replays `path` against `driver`, asserting the state after the initial state and after every step. */
export async function replayPath(path: ModelPath, driver: Driver): Promise<void> {
  for (let i = 0; i < path.steps.length; i++) {
    const step = path.steps[i] as ModelStep;
    if (i > 0) await driver.send(step);
    const actual = await driver.observe();
    if (JSON.stringify(actual) !== JSON.stringify(step.state.value)) {
      throw new PathMismatchError(path, i, step.state.value, actual);
    }
    await driver.check?.(step.state, i);
  }
}
