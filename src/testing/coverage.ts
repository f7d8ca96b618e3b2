import type { AnyMachineSnapshot, AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import { nameOf } from '../diagram/graph.js';

/** How much of a machine a set of paths covers. */
export interface Coverage {
  states: { covered: number; total: number; missing: string[] };
  transitions: { covered: number; total: number; missing: string[] };
  /** True when every state and every transition is covered. */
  complete: boolean;
  /** `name: 5/5 states, 14/14 transitions`, plus what is missing. */
  format(name: string): string;
}

/** Every state node of a machine except its root, by id. */
export function stateNodesOf(machine: AnyStateMachine): AnyStateNode[] {
  return getStateNodes(machine.root);
}

/** Every transition a machine defines: `on`, `after`, `always`, invoke `onDone`/`onError`, guarded branches each. */
export function transitionsOf(machine: AnyStateMachine): AnyTransitionDefinition[] {
  const out: AnyTransitionDefinition[] = [];
  for (const node of [machine.root, ...stateNodesOf(machine)]) {
    for (const list of node.transitions.values()) out.push(...list);
    if (node.always) out.push(...node.always);
  }
  return out;
}

/** A readable name for a transition: `breaker.closed --failure [isTripping]--> breaker.open`. */
export function describeTransition(t: AnyTransitionDefinition): string {
  const guard = t.guard ? ` [${nameOf(t.guard)}]` : '';
  const targets = t.target?.length ? t.target.map((n) => n.id).join(',') : '(stays)';
  return `${t.source.id} --${t.eventType || '(always)'}${guard}--> ${targets}`;
}

/** The state nodes a snapshot is in (the active configuration). */
export function activeNodes(snapshot: AnyMachineSnapshot): AnyStateNode[] {
  const nodes = (snapshot as unknown as { _nodes?: AnyStateNode[] })._nodes;
  if (nodes) return nodes;
  return stateNodesOf(snapshot.machine).filter((n) => n.path.length > 0 && snapshot.matches(toValue(n.path)));
}

function toValue(path: string[]): never {
  let value: unknown = path[path.length - 1];
  for (let i = path.length - 2; i >= 0; i--) value = { [path[i] as string]: value };
  return value as never;
}

/** Builds a coverage report from what was visited. */
export function makeCoverage(
  machine: AnyStateMachine,
  visitedStates: Set<AnyStateNode>,
  takenTransitions: Set<AnyTransitionDefinition>,
): Coverage {
  const states = stateNodesOf(machine);
  const transitions = transitionsOf(machine);
  const missingStates = states.filter((s) => !visitedStates.has(s)).map((s) => s.id);
  const missingTransitions = transitions.filter((t) => !takenTransitions.has(t)).map(describeTransition);
  const coverage: Coverage = {
    states: { covered: states.length - missingStates.length, total: states.length, missing: missingStates },
    transitions: {
      covered: transitions.length - missingTransitions.length,
      total: transitions.length,
      missing: missingTransitions,
    },
    complete: missingStates.length === 0 && missingTransitions.length === 0,
    format(name: string) {
      const head = `${name}: ${coverage.states.covered}/${coverage.states.total} states, ${coverage.transitions.covered}/${coverage.transitions.total} transitions`;
      const missing = [
        ...missingStates.map((s) => `  missing state ${s}`),
        ...missingTransitions.map((t) => `  missing transition ${t}`),
      ];
      return [head, ...missing].join('\n');
    },
  };
  return coverage;
}
