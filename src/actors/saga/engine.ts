import {
  type AnyStateNode,
  type EventObject,
  getStateNodes,
  initialTransition,
  type StateValue,
  transition,
} from 'xstate';
import {
  type SagaContext,
  type SagaInput,
  type SagaMachine,
  type SagaStepEvent,
  type StepRun,
  sagaPayloads,
  sagaTopic,
  sagaUpdates,
} from '../../machines/saga.js';

/** Where a saga is: the machine's state value and context, as XState computes them. */
export interface SagaState {
  /** The state value as a memo key (`running.createOrder`, `completed`). */
  readonly key: string;
  readonly value: StateValue;
  /** True in a final state (`completed`, `compensated`, `cancelled`, `failed`). */
  readonly done: boolean;
  readonly context: SagaContext;
}

/** An effect the machine asked for, for the runner to perform. */
export type SagaEffect =
  | { kind: 'publish'; topic: string; payload: unknown }
  /** The state's invoked actor: run, sleep, wait for a signal or undo a step; its outcome is the next event. */
  | { kind: 'invoke'; id: string; src: StepSource; input: StepRun }
  /** A state left while its invoked step runs (a parallel branch, when another failed): abort it. */
  | { kind: 'stop'; id: string };

/** The actors a saga state invokes (`STEP_SOURCES`, and `compensateStep`). */
export type StepSource = 'runStep' | 'sleep' | 'waitForSignal' | 'childSaga' | 'compensateStep';

/** A transition taken: the state reached and the effects on the way, in XState's order. */
export interface SagaStep {
  state: SagaState;
  effects: SagaEffect[];
}

/** An action of a memoised transition: one of the machine's named actions, or the start of an invoked actor. */
type Recorded =
  | { type: 'spawn'; id: string }
  | { type: 'stop'; id: string }
  | { type: 'update'; name: string; params: unknown }
  | { type: 'publish'; name: string; params: unknown };

/** What XState does on one (state, event type): where it goes and its actions, in order. */
interface Edge {
  key: string;
  value: StateValue;
  done: boolean;
  actions: Recorded[];
}

interface Invoke {
  src: StepSource;
  input: (args: { context: SagaContext; event: EventObject; self: undefined }) => StepRun;
}

const SPAWN = 'xstate.spawnChild';
// Leaving a step's state stops its invoked actor: the step that settled (that is the event), and in a parallel
// group left on a failure, the branches still running, which the runner aborts.
const STOP = 'xstate.stopChild';

/**
 * Steps a saga through its generated machine with XState's pure
 * `transition`, for every saga whether or not the runtime is inspected.
 *
 * XState's `transition` builds an inert actor and the invoked child on each
 * call (≈60 µs), so the engine asks it once per (state, event type) and keeps
 * the answer: the target state and the ordered names of the actions XState
 * runs on the way (learnt from a copy of the machine whose actions only
 * record themselves). Replaying an answer applies those same named actions,
 * the machine's own `sagaUpdates` and `sagaPayloads`. This is exact because
 * the saga machine has no guards: the target depends on the state and the
 * event type only (checked when the engine is built).
 */
export class SagaEngine {
  private readonly edges = new Map<string, Edge>();
  private readonly invokes = new Map<string, Invoke>();
  /** The machine with every named action replaced by a recorder: XState's order, none of the effects. */
  private readonly recorder: SagaMachine;

  constructor(private readonly machine: SagaMachine) {
    const actions: Record<string, (args: unknown, params: unknown) => void> = {};
    for (const name of Object.keys(sagaUpdates)) actions[name] = () => {};
    for (const name of Object.keys(sagaPayloads)) actions[name] = () => {};
    this.recorder = machine.provide({ actions: actions as never });
    for (const node of allNodes(machine.root)) {
      for (const t of [...node.transitions.values()].flat()) {
        if (t.guard) throw new Error(`saga engine: '${node.id}' has a guarded transition; the memo keys would miss it`);
      }
      for (const inv of node.invoke)
        this.invokes.set(inv.id, { src: inv.src as Invoke['src'], input: inv.input as Invoke['input'] });
    }
  }

  /** The first transition of a fresh saga: its initial state, `started`, and the first step. */
  start(input: SagaInput): SagaStep {
    let edge = this.edges.get('');
    if (!edge) {
      const [snapshot, actions] = initialTransition(this.recorder, input);
      edge = this.edgeOf(snapshot, actions);
      this.edges.set('', edge);
    }
    const contextOf = this.machine.config.context as unknown as (a: { input: SagaInput }) => SagaContext;
    const init = { type: 'xstate.init' };
    return this.follow(edge, contextOf({ input }), init);
  }

  /**
   * A saga restored at `value` with `context`: the state's invoked step runs
   * again from its start, as XState restarts the invoked actors a restored
   * snapshot lists.
   */
  resume(value: StateValue, context: SagaContext): SagaStep {
    const key = keyOf(value);
    let edge = this.edges.get(`restore|${key}`);
    if (!edge) {
      // Every active leaf: a parallel group has one per branch (a branch already done has no step to run).
      const leaves = getStateNodes(this.machine.root, value).filter((n) => n.type === 'atomic' || n.type === 'final');
      if (leaves.length === 0) throw new Error(`saga engine: the machine has no state ${key}`);
      edge = {
        key,
        value,
        done: typeof value === 'string' && leaves[0]?.type === 'final',
        actions: leaves.flatMap((leaf) => leaf.invoke.map((inv): Recorded => ({ type: 'spawn', id: inv.id }))),
      };
      this.edges.set(`restore|${key}`, edge);
    }
    return this.follow(edge, context, { type: 'xstate.init' });
  }

  /** Where `event` (the outcome of the state's invoked step) takes the saga in `state`. */
  next(state: SagaState, event: SagaStepEvent): SagaStep {
    const memo = `${state.key}|${event.type}`;
    let edge = this.edges.get(memo);
    if (!edge) {
      const from = this.recorder.resolveState({ value: state.value, context: state.context });
      const [snapshot, actions] = transition(this.recorder, from, event as never);
      if (snapshot === from) {
        throw new Error(`saga engine: the machine ignores '${event.type}' in state ${state.key}`);
      }
      edge = this.edgeOf(snapshot, actions);
      // The steps whose states were left: XState stops their actors (a pure transition names none), the runner
      // aborts any still running (the other branches of a parallel group left on a failure).
      const after = new Set(this.invokedAt(snapshot.value));
      const stops = this.invokedAt(state.value).filter((id) => !after.has(id));
      edge.actions.unshift(...stops.map((id): Recorded => ({ type: 'stop', id })));
      this.edges.set(memo, edge);
    }
    return this.follow(edge, state.context, event);
  }

  /** Applies a memoised transition to a saga's own context and event. */
  private follow(edge: Edge, context: SagaContext, event: SagaStepEvent): SagaStep {
    const effects: SagaEffect[] = [];
    for (const a of edge.actions) {
      if (a.type === 'stop') effects.push({ kind: 'stop', id: a.id });
      else if (a.type === 'spawn') {
        const inv = this.invokes.get(a.id) as Invoke;
        effects.push({ kind: 'invoke', id: a.id, src: inv.src, input: inv.input({ context, event, self: undefined }) });
      } else if (a.type === 'update') {
        const update = sagaUpdates[a.name as keyof typeof sagaUpdates] as (
          c: SagaContext,
          e: SagaStepEvent,
          p: unknown,
        ) => SagaContext;
        context = update(context, event, a.params);
      } else {
        const payload = sagaPayloads[a.name as keyof typeof sagaPayloads](context);
        effects.push({ kind: 'publish', topic: sagaTopic(this.machine.id, a.name), payload });
      }
    }
    return { state: { key: edge.key, value: edge.value, done: edge.done, context }, effects };
  }

  /** The ids of the steps the states of `value` invoke. */
  private invokedAt(value: StateValue): string[] {
    return getStateNodes(this.machine.root, value).flatMap((n) => n.invoke.map((inv) => inv.id));
  }

  /** Reads what XState did into an edge; an action the engine cannot replay is refused here, once. */
  private edgeOf(
    snapshot: { value: StateValue; status: string },
    actions: ReadonlyArray<{ type: string; params?: unknown }>,
  ): Edge {
    const recorded: Recorded[] = [];
    for (const a of actions) {
      if (a.type === STOP) continue;
      if (a.type === SPAWN) recorded.push({ type: 'spawn', id: (a.params as { id: string }).id });
      else if (a.type in sagaUpdates) recorded.push({ type: 'update', name: a.type, params: a.params });
      else if (a.type in sagaPayloads) recorded.push({ type: 'publish', name: a.type, params: a.params });
      else throw new Error(`saga engine: the machine runs '${a.type}', which the runner cannot perform`);
    }
    return { key: keyOf(snapshot.value), value: snapshot.value, done: snapshot.status === 'done', actions: recorded };
  }
}

function* allNodes(node: AnyStateNode): Generator<AnyStateNode> {
  yield node;
  for (const child of Object.values(node.states)) yield* allNodes(child);
}

/** `{ running: 'createOrder' }` -> `running.createOrder`; a parallel group's regions in parentheses. */
function keyOf(value: StateValue): string {
  if (typeof value === 'string') return value;
  const entries = Object.entries(value) as [string, StateValue][];
  if (entries.length === 1) {
    const [parent, child] = entries[0] as [string, StateValue];
    return `${parent}.${keyOf(child)}`;
  }
  return `(${entries.map(([region, child]) => `${region}.${keyOf(child)}`).join(',')})`;
}
