/**
 * The saga machine and its contract with the runner (`src/actors/saga/`):
 *
 * - The machine decides. Which state follows a step's outcome, how the context
 *   changes (its named `assign`s, `sagaUpdates`), what is published and with
 *   which payload (`sagaPayloads`), and which step runs or is undone next (the
 *   state's invoked `runStep` / `compensateStep` and that invoke's input).
 * - The runner performs. It asks XState where an event leads (`transition`,
 *   memoised per state and event type since the machine has no guards), runs
 *   the invoked step with its retries and timeout, publishes what the machine
 *   published, and checkpoints the machine's state value and context to the
 *   store before each step starts and when the saga ends. It never picks a
 *   state itself.
 * - One path whether watched or not. The same runner runs every saga; when the
 *   runtime is inspected it also keeps an actor of this machine in the system
 *   as a visible mirror, fed the same events, which performs nothing.
 */
import { assign, fromPromise, setup } from 'xstate';
import { errorData } from '../core/json.js';
import { publish } from './publish.js';

/**
 * What a step does, as its state invokes it: `run` calls the step's function
 * (`runStep`), `sleep` waits until a deadline kept as data (`sleep`),
 * `signal` waits for a signal sent to the saga (`waitForSignal`), `child`
 * runs another saga to its end (`childSaga`; undone as a whole).
 */
export type SagaStepKind = 'run' | 'sleep' | 'signal' | 'child';

/** The actor a step's state invokes, by step kind. */
export const STEP_SOURCES = { run: 'runStep', sleep: 'sleep', signal: 'waitForSignal', child: 'childSaga' } as const;

/** What the machine needs to know of a step: its name and whether it can be undone. */
export interface SagaStepShape {
  name: string;
  /** Default `run`. */
  kind?: SagaStepKind;
  compensable: boolean;
  /** Undo this step also when it fails (its effect may have landed though the call failed, e.g. a timeout). */
  undoOnFailure?: boolean;
  /** A parallel group (`{ parallel: [...] }`): its branches run at once, each a state region. */
  parallel?: readonly SagaStepShape[];
  /**
   * False for a step that cannot fail (a fixed sleep, a wait with no timeout):
   * its state has no error transition. Default true.
   */
  canFail?: boolean;
}

/** The saga's data: what it was given, what each step returned, how it ended. */
export interface SagaContext {
  sagaId: string;
  input: unknown;
  results: Record<string, unknown>;
  failedStep: string | undefined;
  error: unknown;
  /** Steps undone so far, in the order they were undone (reverse of completion). */
  compensated: string[];
  compensationError: unknown;
  /** Why the saga was cancelled (`saga.cancel`), when it was. */
  reason?: string | undefined;
  /** The parallel branches that completed (or may have taken effect): the ones a failure undoes. */
  completed?: string[] | undefined;
}

/** Input of a saga machine: a fresh run, or a run resumed with what it had done. */
export interface SagaInput {
  sagaId: string;
  input: unknown;
  results?: Record<string, unknown>;
}

/**
 * The event that cancels a saga (`saga.cancel(id, reason)`): in any running
 * step it aborts the step and undoes what completed, in the `cancelling`
 * states, ending `cancelled`. `error` is the `CANCELLED` error the step's
 * signal aborted with.
 */
export const CANCEL = 'saga.cancel';

/** The cancel event as the runner sends it. */
export interface SagaCancelEvent {
  type: typeof CANCEL;
  error: unknown;
  reason: string | undefined;
}

/** What the step runner actor receives. */
export interface StepRun {
  step: string;
  context: SagaContext;
}

/**
 * Generates the machine of one saga: `running.<step>` for each step in order
 * (invoking `runStep`, or `sleep` / `waitForSignal` for a step that waits),
 * `compensating.<step>` and `cancelling.<step>` for each step that has a
 * compensation, and the finals `completed`, `compensated`, `cancelled`,
 * `failed`. A `saga.cancel` event in any running step undoes what completed
 * in the `cancelling` states and ends `cancelled`. A step that fails sends the saga to the
 * compensation of the nearest completed compensable step before it; only steps
 * that completed are undone, in reverse order. A step that returned a result
 * the runner cannot keep (`RESULT_REFUSED`) happened all the same: it is undone
 * first, or, with no undo, the saga ends `failed` (so `failed` always exists).
 * Running and undoing a step are
 * the invoked actors `runStep` and `compensateStep`, which the runner performs
 * (with retries and timeouts); the machine only decides what is next.
 */
export function createSagaMachine(name: string, steps: readonly SagaStepShape[]) {
  const id = name;
  // The order things are undone in, reversed: every step, a parallel group's branches in their place.
  const flat: readonly SagaStepShape[] = steps.flatMap((step) => step.parallel ?? [step]);
  /**
   * Where to go when the step at flat index `index` fails (or its undo is
   * done): the nearest compensable step before it in the undo tree `tree`,
   * else the tree's final state. A failure undoes in `compensating` (ending
   * `compensated`), a cancel in `cancelling` (ending `cancelled`).
   */
  const undoFrom = (index: number, tree: 'compensating' | 'cancelling' = 'compensating'): string => {
    for (let i = index - 1; i >= 0; i--) {
      const step = flat[i] as SagaStepShape;
      if (step.compensable) return `#${id}.${tree}.${step.name}`;
    }
    return `#${id}.${tree === 'compensating' ? 'compensated' : 'cancelled'}`;
  };

  const running: Record<string, object> = {};
  const compensating: Record<string, object> = {};
  const cancelling: Record<string, object> = {};
  const invokeOf = (step: SagaStepShape) => ({
    id: `run.${step.name}`,
    src: STEP_SOURCES[step.kind ?? 'run'],
    input: ({ context }: { context: SagaContext }) => ({ step: step.name, context }),
  });
  let at = 0;
  steps.forEach((step, i) => {
    const next = i + 1 < steps.length ? `#${id}.running.${(steps[i + 1] as SagaStepShape).name}` : `#${id}.completed`;
    if (step.parallel) {
      // A parallel group: one region per branch, each `run` then `done`; when every branch is done, the next step.
      // A branch that fails leaves the group (XState stops the other branches' invoked steps: the runner aborts
      // them) and undoes the group's branches that completed, then the steps before it.
      const end = at + step.parallel.length;
      const regions: Record<string, object> = {};
      for (const b of step.parallel) {
        const undoSelf = b.compensable && b.undoOnFailure;
        regions[b.name] = {
          initial: 'run',
          states: {
            run: {
              invoke: {
                ...invokeOf(b),
                onDone: {
                  target: 'done',
                  actions: [
                    { type: 'recordBranchResult', params: { step: b.name } },
                    { type: 'stepCompleted', params: { step: b.name } },
                  ],
                },
                ...(b.canFail !== false && {
                  onError: {
                    target: undoFrom(end),
                    actions: { type: 'recordBranchFailure', params: { step: b.name, undone: undoSelf === true } },
                  },
                }),
              },
              on: {
                ...((b.kind ?? 'run') === 'run' && {
                  [`${RESULT_REFUSED}.${b.name}`]: {
                    target: b.compensable ? undoFrom(end) : `#${id}.failed`,
                    actions: { type: 'recordRefusedBranch', params: { step: b.name, undoable: b.compensable } },
                  },
                }),
              },
            },
            done: { type: 'final' },
          },
        };
      }
      running[step.name] = {
        type: 'parallel',
        states: regions,
        onDone: { target: next },
        on: {
          [CANCEL]: {
            target: undoFrom(end, 'cancelling'),
            actions: { type: 'recordCancel', params: { step: step.name } },
          },
        },
      };
      for (const b of step.parallel) {
        at++;
        if (!b.compensable) continue;
        const undo = (tree: 'compensating' | 'cancelling') => ({
          invoke: {
            id: `compensate.${b.name}`,
            src: 'compensateStep',
            input: ({ context }: { context: SagaContext }) => ({ step: b.name, context }),
            onDone: {
              target: undoFrom(at - 1, tree),
              actions: { type: 'recordCompensated', params: { step: b.name } },
            },
            onError: { target: `#${id}.failed`, actions: 'recordCompensationFailure' },
          },
          // A branch that did not complete (it was aborted, or failed) has nothing to undo: the runner skips it.
          on: { [SKIP]: { target: undoFrom(at - 1, tree) } },
        });
        compensating[b.name] = undo('compensating');
        cancelling[b.name] = undo('cancelling');
      }
      return;
    }
    const self = at++;
    const undoSelf = step.compensable && step.undoOnFailure;
    const kind = step.kind ?? 'run';
    running[step.name] = {
      invoke: {
        ...invokeOf(step),
        onDone: {
          target: next,
          actions: [
            { type: 'recordResult', params: { step: step.name } },
            { type: 'stepCompleted', params: { step: step.name } },
          ],
        },
        ...(step.canFail !== false && {
          onError: {
            target: undoSelf ? `#${id}.compensating.${step.name}` : undoFrom(self),
            actions: { type: 'recordFailure', params: { step: step.name } },
          },
        }),
      },
      on: {
        // The step returned, so its effect happened, but its result cannot be stored: undo it with the others,
        // or, with no undo, stop for an operator rather than report a rollback that left this effect in place.
        // Only a call returns results of its own (a signal's payload was checked when it was sent).
        ...(kind === 'run' && {
          [RESULT_REFUSED]: {
            target: step.compensable ? `#${id}.compensating.${step.name}` : `#${id}.failed`,
            actions: { type: 'recordRefusedResult', params: { step: step.name, undoable: step.compensable } },
          },
        }),
        // Cancelled while this step runs (or waits): it is aborted and counts as not done, unless its effect may
        // have landed anyway (`undoOnFailure`), as on a failure.
        [CANCEL]: {
          target: undoSelf ? `#${id}.cancelling.${step.name}` : undoFrom(self, 'cancelling'),
          actions: { type: 'recordCancel', params: { step: step.name } },
        },
      },
    };
    if (step.compensable) {
      const undo = (tree: 'compensating' | 'cancelling') => ({
        invoke: {
          id: `compensate.${step.name}`,
          src: 'compensateStep',
          input: ({ context }: { context: SagaContext }) => ({ step: step.name, context }),
          onDone: { target: undoFrom(self, tree), actions: { type: 'recordCompensated', params: { step: step.name } } },
          onError: { target: `#${id}.failed`, actions: 'recordCompensationFailure' },
        },
      });
      compensating[step.name] = undo('compensating');
      cancelling[step.name] = undo('cancelling');
    }
  });

  const first = (steps[0] as SagaStepShape).name;
  const topic = (what: string) => sagaTopic(name, what);
  return setup({
    types: {
      context: {} as SagaContext,
      input: {} as SagaInput,
    },
    actors: {
      runStep: fromPromise<unknown, StepRun>(async () => undefined),
      sleep: fromPromise<unknown, StepRun>(async () => undefined),
      waitForSignal: fromPromise<unknown, StepRun>(async () => undefined),
      childSaga: fromPromise<unknown, StepRun>(async () => undefined),
      compensateStep: fromPromise<unknown, StepRun>(async () => undefined),
    },
    actions: {
      recordResult: assign(({ context, event }, params: { step: string }) =>
        sagaUpdates.recordResult(context, event as SagaStepEvent, params),
      ),
      recordFailure: assign(({ context, event }, params: { step: string }) =>
        sagaUpdates.recordFailure(context, event as SagaStepEvent, params),
      ),
      recordRefusedResult: assign(({ context, event }, params: { step: string; undoable: boolean }) =>
        sagaUpdates.recordRefusedResult(context, event as SagaStepEvent, params),
      ),
      recordBranchResult: assign(({ context, event }, params: { step: string }) =>
        sagaUpdates.recordBranchResult(context, event as SagaStepEvent, params),
      ),
      recordBranchFailure: assign(({ context, event }, params: { step: string; undone: boolean }) =>
        sagaUpdates.recordBranchFailure(context, event as SagaStepEvent, params),
      ),
      recordRefusedBranch: assign(({ context, event }, params: { step: string; undoable: boolean }) =>
        sagaUpdates.recordRefusedBranch(context, event as SagaStepEvent, params),
      ),
      recordCancel: assign(({ context, event }, params: { step: string }) =>
        sagaUpdates.recordCancel(context, event as SagaStepEvent, params),
      ),
      recordCompensated: assign(({ context, event }, params: { step: string }) =>
        sagaUpdates.recordCompensated(context, event as SagaStepEvent, params),
      ),
      recordCompensationFailure: assign(({ context, event }) =>
        sagaUpdates.recordCompensationFailure(context, event as SagaStepEvent),
      ),
      stepCompleted: publish(topic('stepCompleted'), ({ context }) => sagaPayloads.stepCompleted(context)),
      started: publish(topic('started'), ({ context }) => sagaPayloads.started(context)),
      compensating: publish(topic('compensating'), ({ context }) => sagaPayloads.compensating(context)),
      completed: publish(topic('completed'), ({ context }) => sagaPayloads.completed(context)),
      compensated: publish(topic('compensated'), ({ context }) => sagaPayloads.compensated(context)),
      failed: publish(topic('failed'), ({ context }) => sagaPayloads.failed(context)),
      cancelled: publish(topic('cancelled'), ({ context }) => sagaPayloads.cancelled(context)),
    },
  }).createMachine({
    id,
    context: ({ input }) => ({
      sagaId: input.sagaId,
      input: input.input,
      results: input.results ?? {},
      failedStep: undefined,
      error: undefined,
      compensated: [],
      compensationError: undefined,
      reason: undefined,
    }),
    initial: 'running',
    entry: 'started',
    // A saga with nothing to undo has no compensating states: none could be reached. `failed` is always
    // there: a step with no undo whose result cannot be stored ends the saga there.
    states: {
      running: { initial: first, states: running as Record<string, {}> },
      ...(Object.keys(compensating).length > 0
        ? {
            // Always entered at a named step; `initial` only satisfies XState's rule for compound states.
            compensating: {
              entry: 'compensating',
              initial: Object.keys(compensating).at(-1) as string,
              states: compensating as Record<string, {}>,
            },
          }
        : // Typed as present: an optional key would put `| undefined` into the published schema type, which
          // consumers with exactOptionalPropertyTypes and skipLibCheck off reject (StateSchema has no undefined);
          // the step maps are typed by name so the state value reads { running: string } | { compensating: string }.
          ({} as {
            compensating: { entry: 'compensating'; initial: string; states: Record<string, {}> };
          })),
      ...(Object.keys(cancelling).length > 0
        ? {
            // The undo of a cancelled saga: the same compensations as `compensating`, ending `cancelled`.
            cancelling: {
              entry: 'compensating',
              initial: Object.keys(cancelling).at(-1) as string,
              states: cancelling as Record<string, {}>,
            },
          }
        : ({} as {
            cancelling: { entry: 'compensating'; initial: string; states: Record<string, {}> };
          })),
      failed: { type: 'final', entry: 'failed' },
      completed: { type: 'final', entry: 'completed' },
      compensated: { type: 'final', entry: 'compensated' },
      cancelled: { type: 'final', entry: 'cancelled' },
    },
  });
}

/**
 * The event the runner sends instead of undoing a parallel branch that did not
 * complete (`compensating.<branch>`): there is nothing of it to undo.
 */
export const SKIP = 'saga.skip';

/**
 * The event the runner sends instead of `xstate.done.actor.run.<step>` when a
 * step returned a result that cannot be stored (see `stepResult`): the step
 * happened, so it is undone (or, with no undo, the saga ends `failed`).
 */
export const RESULT_REFUSED = 'saga.resultRefused';

/** The outcome of an invoked step, as XState delivers it (`xstate.done.actor.*` / `xstate.error.actor.*`). */
export interface SagaStepEvent {
  type: string;
  output?: unknown;
  error?: unknown;
  /** A cancel's reason (`CANCEL`). */
  reason?: string | undefined;
}

/**
 * The machine's `assign`s, by action name: `createSagaMachine` builds its
 * actions from these, and the runner applies the same functions when it
 * replays a memoised transition, so there is one definition of each update.
 */
export const sagaUpdates = {
  recordResult: (c: SagaContext, e: SagaStepEvent, p: { step: string }): SagaContext => ({
    ...c,
    results: { ...c.results, [p.step]: e.output },
  }),
  recordFailure: (c: SagaContext, e: SagaStepEvent, p: { step: string }): SagaContext => ({
    ...c,
    failedStep: p.step,
    error: e.error,
  }),
  recordRefusedResult: (c: SagaContext, e: SagaStepEvent, p: { step: string; undoable: boolean }): SagaContext => ({
    ...c,
    failedStep: p.step,
    error: e.error,
    // Nothing undoes it: the same error says why the saga stopped with the effect in place.
    ...(!p.undoable && { compensationError: e.error }),
  }),
  recordBranchResult: (c: SagaContext, e: SagaStepEvent, p: { step: string }): SagaContext => ({
    ...c,
    results: { ...c.results, [p.step]: e.output },
    completed: [...(c.completed ?? []), p.step],
  }),
  recordBranchFailure: (c: SagaContext, e: SagaStepEvent, p: { step: string; undone: boolean }): SagaContext => ({
    ...c,
    failedStep: p.step,
    error: e.error,
    // Its effect may have landed though it failed: undone with the branches that completed.
    ...(p.undone && { completed: [...(c.completed ?? []), p.step] }),
  }),
  recordRefusedBranch: (c: SagaContext, e: SagaStepEvent, p: { step: string; undoable: boolean }): SagaContext => ({
    ...sagaUpdates.recordRefusedResult(c, e, p),
    completed: [...(c.completed ?? []), p.step],
  }),
  recordCancel: (c: SagaContext, e: SagaStepEvent, p: { step: string }): SagaContext => ({
    ...c,
    failedStep: p.step,
    error: e.error,
    reason: e.reason,
  }),
  recordCompensated: (c: SagaContext, _e: SagaStepEvent, p: { step: string }): SagaContext => ({
    ...c,
    compensated: [...c.compensated, p.step],
  }),
  recordCompensationFailure: (c: SagaContext, e: SagaStepEvent): SagaContext => ({ ...c, compensationError: e.error }),
};

/** The bus topic of the saga `name`'s event `what` (`saga.checkout.completed`). */
export function sagaTopic(name: string, what: string): string {
  return `saga.${name}.${what}`;
}

/** The machine's `publish` actions, by name: each publishes `saga.<name>.<action>` with this payload. */
export const sagaPayloads = {
  started: (c: SagaContext) => ({ sagaId: c.sagaId, input: c.input }),
  stepCompleted: (c: SagaContext) => ({ sagaId: c.sagaId, results: c.results }),
  compensating: (c: SagaContext) => ({ sagaId: c.sagaId, failedStep: c.failedStep, error: errorData(c.error) }),
  completed: (c: SagaContext) => ({ sagaId: c.sagaId, results: c.results }),
  compensated: (c: SagaContext) => ({
    sagaId: c.sagaId,
    failedStep: c.failedStep,
    error: errorData(c.error),
    compensated: c.compensated,
  }),
  failed: (c: SagaContext) => ({
    sagaId: c.sagaId,
    failedStep: c.failedStep,
    error: errorData(c.error),
    compensationError: errorData(c.compensationError),
    compensated: c.compensated,
  }),
  cancelled: (c: SagaContext) => ({
    sagaId: c.sagaId,
    step: c.failedStep,
    reason: c.reason,
    compensated: c.compensated,
  }),
};

/** The machine type `createSagaMachine` returns. */
export type SagaMachine = ReturnType<typeof createSagaMachine>;
