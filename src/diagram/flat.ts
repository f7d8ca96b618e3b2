import type { GraphState, MachineGraph } from './graph.js';

/** A drawable edge between two leaf states (a targetless transition loops on its source). */
export interface FlatEdge {
  from: string;
  to: string;
  /** `event [guard]`. */
  label: string;
}

/** A machine reduced to its leaf states: what both the Mermaid and the SVG diagrams draw. */
export interface FlatGraph {
  id: string;
  /** Leaf states (atomic and final), in definition order. */
  nodes: Array<{ id: string; final: boolean }>;
  /** The leaf the machine starts in. */
  initial?: string;
  edges: FlatEdge[];
  /** Transitions of the root itself: they apply in every state, so no single edge can show them. */
  everywhere: string[];
}

/**
 * Flattens the hierarchy: a transition of a compound state becomes one edge
 * from each of its leaves, a target that is compound becomes its initial leaf.
 * Mermaid cannot draw edges between states of different composite blocks
 * (every saga compensation is one), so flat is the form that renders everywhere.
 */
export function flatten(graph: MachineGraph): FlatGraph {
  const byId = new Map(graph.states.map((s) => [s.id, s]));
  const leavesOf = (id: string): string[] => {
    const s = byId.get(id);
    if (!s || s.children.length === 0) return [id];
    return s.children.flatMap(leavesOf);
  };
  const entered = (id: string): string => {
    let s: GraphState | undefined = byId.get(id);
    while (s?.initial !== undefined) s = byId.get(s.initial);
    return s?.id ?? id;
  };
  const nodes = graph.states
    .filter((s) => s.children.length === 0)
    .map((s) => ({ id: s.id, final: s.type === 'final' }));
  const edges: FlatEdge[] = [];
  const everywhere: string[] = [];
  for (const t of graph.transitions) {
    const label = t.guard ? `${t.label} [${t.guard}]` : t.label;
    if (t.source === '') {
      everywhere.push(label);
      continue;
    }
    for (const from of leavesOf(t.source)) {
      const targets = t.targets.length > 0 ? t.targets.map(entered) : [from];
      for (const to of targets) edges.push({ from, to, label });
    }
  }
  const initial = graph.initial !== undefined ? entered(graph.initial) : undefined;
  return { id: graph.id, nodes, ...(initial !== undefined ? { initial } : {}), edges, everywhere };
}
