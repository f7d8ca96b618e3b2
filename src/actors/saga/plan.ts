import type { AnyStateNode, AnyTransitionDefinition } from 'xstate';
import type { SagaMachine } from '../../machines/saga.js';

/** An action as the machine names it, with its params. */
export interface PlannedAction {
  type: string;
  params?: { step: string };
}

/** Where a finished step or undo leads, and what happens on the way. */
export interface PlannedEdge {
  target: string;
  /** The transition's actions, then the entry actions of every state entered, in XState's order. */
  actions: PlannedAction[];
}

/** One state of the saga machine, flattened to its dotted key (`running.createOrder`). */
export interface PlannedState {
  key: string;
  kind: 'run' | 'undo' | 'final';
  step: string | undefined;
  done: PlannedEdge | undefined;
  error: PlannedEdge | undefined;
}

/** The saga machine read as a transition table. */
export interface SagaPlan {
  initial: string;
  /** Entry actions of the machine and of the states on the way to `initial`. */
  start: PlannedAction[];
  states: Map<string, PlannedState>;
}

/**
 * Reads a generated saga machine into a transition table, so a saga can run
 * without an XState actor when nobody inspects it (an actor costs ~100 µs per
 * saga, the table a few). Everything comes from the machine itself: targets,
 * transition actions and entry actions, so the table cannot drift from it,
 * and the model-based tests replay the machine's own paths against both.
 */
export function compilePlan(machine: SagaMachine): SagaPlan {
  const states = new Map<string, PlannedState>();
  const root = machine.root;
  const groups: Array<[AnyStateNode | undefined, 'run' | 'undo']> = [
    [root.states.running, 'run'],
    [root.states.compensating, 'undo'],
  ];
  for (const [group, kind] of groups) {
    for (const node of Object.values(group?.states ?? {}) as AnyStateNode[]) {
      const invoke = node.invoke[0];
      if (!invoke) throw new Error(`saga plan: state ${node.id} invokes nothing`);
      states.set(keyOf(node), {
        key: keyOf(node),
        kind,
        step: node.key,
        done: edge(node, node.transitions.get(`xstate.done.actor.${invoke.id}`)?.[0]),
        error: edge(node, node.transitions.get(`xstate.error.actor.${invoke.id}`)?.[0]),
      });
    }
  }
  for (const node of Object.values(root.states) as AnyStateNode[]) {
    if (node.type === 'final')
      states.set(node.key, { key: node.key, kind: 'final', step: undefined, done: undefined, error: undefined });
  }
  const running = root.states.running as AnyStateNode;
  const first = running.initial.target[0] as AnyStateNode;
  return {
    initial: keyOf(first),
    start: [...actionsOf(root.entry), ...actionsOf(running.entry), ...actionsOf(first.entry)],
    states,
  };
}

function keyOf(node: AnyStateNode): string {
  return node.path.join('.');
}

function edge(source: AnyStateNode, t: AnyTransitionDefinition | undefined): PlannedEdge | undefined {
  if (!t) return undefined;
  const target = t.target?.[0];
  if (!target) throw new Error(`saga plan: a transition of ${source.id} has no target`);
  // Entered states: the target's ancestors below the deepest state shared with the source, parents first.
  let shared = 0;
  while (shared < source.path.length && source.path[shared] === target.path[shared]) shared++;
  const entered: AnyStateNode[] = [];
  for (let n: AnyStateNode | undefined = target; n && n.path.length > shared; n = n.parent) entered.unshift(n);
  return { target: keyOf(target), actions: [...actionsOf(t.actions), ...entered.flatMap((n) => actionsOf(n.entry))] };
}

function actionsOf(actions: readonly unknown[]): PlannedAction[] {
  return actions.map((a) => {
    if (typeof a === 'string') return { type: a };
    if (a && typeof a === 'object' && typeof (a as PlannedAction).type === 'string') return a as PlannedAction;
    throw new Error('saga plan: the saga machine must name its actions');
  });
}
