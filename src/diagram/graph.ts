import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

/** One state of a machine, named by its path below the root (`running.working`). */
export interface GraphState {
  /** Path below the root joined with dots; unique within the machine. */
  id: string;
  /** The state's own key (`working`). */
  key: string;
  /** Id of the parent state; absent for top-level states. */
  parent?: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** Id of the initial child of a compound state. */
  initial?: string;
  /** Ids of the child states, in definition order. */
  children: string[];
}

/** One transition (each guarded branch apart). */
export interface GraphTransition {
  /** Id of the state that defines it; `''` for the machine root. */
  source: string;
  /** Ids of the target states; empty when it stays (actions only). */
  targets: string[];
  /** The raw event type (`xstate.after.openDelay.breaker.open` included). */
  event: string;
  /** A short, readable name of the event (`after openDelay`, `onDone`). */
  label: string;
  guard?: string;
  actions: string[];
}

/** A machine as plain data: what `keel diagram --format json` prints and the viewer draws. */
export interface MachineGraph {
  id: string;
  /** Id of the root's initial state. */
  initial?: string;
  /** Every state below the root, parents before their children. */
  states: GraphState[];
  transitions: GraphTransition[];
}

/** Builds the graph of a machine from its state nodes, so diagrams can never drift from the definition. */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const states: GraphState[] = [];
  const transitions: GraphTransition[] = [];
  const visit = (node: AnyStateNode) => {
    for (const list of node.transitions.values()) for (const t of list) transitions.push(edge(node, t));
    for (const t of node.always ?? []) transitions.push(edge(node, t));
    for (const child of Object.values(node.states) as AnyStateNode[]) {
      states.push(stateOf(child));
      visit(child);
    }
  };
  visit(machine.root);
  const initial = initialOf(machine.root);
  return { id: machine.root.key, ...(initial ? { initial } : {}), states, transitions };
}

function idOf(node: AnyStateNode): string {
  return node.path.join('.');
}

function initialOf(node: AnyStateNode): string | undefined {
  const target = node.initial?.target?.[0] as AnyStateNode | undefined;
  return target ? idOf(target) : undefined;
}

function stateOf(node: AnyStateNode): GraphState {
  const parent = node.parent && node.parent.path.length > 0 ? idOf(node.parent) : undefined;
  const initial = node.type === 'compound' ? initialOf(node) : undefined;
  return {
    id: idOf(node),
    key: node.key,
    ...(parent !== undefined ? { parent } : {}),
    type: node.type,
    ...(initial !== undefined ? { initial } : {}),
    children: (Object.values(node.states) as AnyStateNode[]).map(idOf),
  };
}

function edge(node: AnyStateNode, t: AnyTransitionDefinition): GraphTransition {
  const guard = t.guard ? nameOf(t.guard) : undefined;
  return {
    source: idOf(node),
    targets: (t.target ?? []).map((n: AnyStateNode) => idOf(n)),
    event: t.eventType,
    label: labelOf(t.eventType, node),
    ...(guard !== undefined ? { guard } : {}),
    actions: (t.actions ?? []).map(nameOf),
  };
}

/** XState's built-in event names carry ids that say nothing on a diagram; these say what happened. */
function labelOf(event: string, node: AnyStateNode): string {
  if (event === '') return 'always';
  if (event.startsWith('xstate.after.')) {
    const delay = event.slice('xstate.after.'.length, event.length - node.id.length - 1);
    return `after ${delay}`;
  }
  if (event.startsWith('xstate.done.actor.')) return 'onDone';
  if (event === 'xstate.error.actor.*') return 'any child fails';
  if (event.startsWith('xstate.error.actor.')) return 'onError';
  if (event.startsWith('xstate.done.state.')) return 'onDone';
  return event;
}

/** The name of a guard or an action as written in the machine: its string, its `type`, or its function's name. */
export function nameOf(x: unknown): string {
  if (typeof x === 'string') return x;
  if (typeof x === 'function') return x.name || 'inline';
  if (x && typeof x === 'object' && 'type' in x) return String((x as { type: unknown }).type);
  return 'inline';
}
