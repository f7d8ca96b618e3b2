import type { AnyMachineSnapshot, AnyStateMachine, AnyTransitionDefinition, EventObject } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';
import { KeelError } from '../core/errors.js';
import { activeNodes, type Coverage, describeTransition, makeCoverage } from './coverage.js';

/** One step of a path: the event sent and the state the model expects after it. */
export interface ModelStep {
  event: EventObject;
  state: AnyMachineSnapshot;
}

/** A path through a machine, from its initial state; `steps[0]` is the initial state (`xstate.init`). */
export interface ModelPath {
  description: string;
  steps: ModelStep[];
  /** The transitions the last step takes (what this path is for). */
  covers: string[];
}

/** Options for `planPaths`. */
export interface PlanOptions<TEvent extends EventObject = EventObject> {
  /** The events to try in every state (with payloads); can depend on the state. */
  events: readonly TEvent[] | ((snapshot: AnyMachineSnapshot) => readonly TEvent[]);
  /** Input for the machine's initial state. */
  input?: unknown;
  /** How two snapshots are told apart; default value + context. Keep context bounded so the graph is finite. */
  serializeState?: (snapshot: AnyMachineSnapshot) => string;
  /** Keep a path for every edge of the graph instead of a smallest covering set. */
  allEdges?: boolean;
  /** Stop after visiting this many states (a guard against an unbounded context). Default 10,000. */
  limit?: number;
}

/** Paths and the coverage they reach. */
export interface Plan {
  paths: ModelPath[];
  coverage: Coverage;
}

/** JSON of value and context; actor refs in context become their ids. */
export function defaultSerializeState(snapshot: AnyMachineSnapshot): string {
  return JSON.stringify({ value: snapshot.value, context: snapshot.context }, (_key, v) =>
    v && typeof v === 'object' && typeof (v as { send?: unknown }).send === 'function'
      ? `actor:${(v as { id: string }).id}`
      : v,
  );
}

/**
 * Generates paths that together visit every reachable state and take every
 * reachable transition of `machine`: for each edge of the machine's graph
 * (`xstate/graph` adjacency map), the shortest path to the edge's source plus
 * the edge. Edges that add no new state or transition are dropped unless
 * `allEdges` is set.
 */
export function planPaths<TEvent extends EventObject>(machine: AnyStateMachine, options: PlanOptions<TEvent>): Plan {
  if (!options || (typeof options.events !== 'function' && !Array.isArray(options.events))) {
    throw new KeelError(
      'INVALID_OPTIONS',
      "planPaths: option 'events' must be an array of events or a function of the state",
    );
  }
  const serializeState = options.serializeState ?? defaultSerializeState;
  const traversal = {
    events: options.events as never,
    input: options.input,
    serializeState: (s: AnyMachineSnapshot) => serializeState(s),
    limit: options.limit ?? 10_000,
  };
  const adjacency = getAdjacencyMap(machine, traversal) as Record<
    string,
    { state: AnyMachineSnapshot; transitions: Record<string, { event: EventObject; state: AnyMachineSnapshot }> }
  >;
  const shortest = new Map<string, ModelStep[]>();
  for (const path of getShortestPaths(machine, traversal)) {
    shortest.set(serializeState(path.state as AnyMachineSnapshot), path.steps as ModelStep[]);
  }

  interface Edge {
    steps: ModelStep[];
    taken: AnyTransitionDefinition[];
  }
  const edges: Edge[] = [];
  for (const [key, { state, transitions }] of Object.entries(adjacency)) {
    const prefix = shortest.get(key);
    if (!prefix) continue;
    for (const { event, state: next } of Object.values(transitions)) {
      const taken = [
        ...(machine.getTransitionData(state, event) as AnyTransitionDefinition[]),
        ...doneTransitions(state, next),
      ];
      if (taken.length === 0 && !options.allEdges) continue;
      edges.push({ steps: [...prefix, { event, state: next }], taken });
    }
  }
  edges.sort((a, b) => a.steps.length - b.steps.length);

  const visited = new Set<ReturnType<typeof activeNodes>[number]>();
  const taken = new Set<AnyTransitionDefinition>();
  const paths: ModelPath[] = [];
  for (const edge of edges) {
    let adds = options.allEdges === true;
    for (const step of edge.steps) {
      for (const node of activeNodes(step.state)) {
        if (!visited.has(node)) {
          visited.add(node);
          adds = true;
        }
      }
    }
    for (const t of edge.taken) {
      if (!taken.has(t)) {
        taken.add(t);
        adds = true;
      }
    }
    if (!adds) continue;
    paths.push({
      description: edge.steps
        .slice(1)
        .map((s) => s.event.type)
        .join(' → '),
      steps: edge.steps,
      covers: edge.taken.map(describeTransition),
    });
  }
  // The initial state alone counts as visited even for a machine with no edges.
  const initial = shortest.values().next().value as ModelStep[] | undefined;
  for (const node of initial ? activeNodes(initial[0]!.state) : []) visited.add(node);
  return { paths, coverage: makeCoverage(machine, visited, taken) };
}

/**
 * The `onDone` transitions of compound and parallel states that fired within
 * the step from `from` to `to`: XState takes them in the same macrostep as the
 * event (the last region of a parallel state reached its final state), so the
 * event's own transitions do not list them. One counts when its state was
 * active before, is not after, and its targets are.
 */
function doneTransitions(from: AnyMachineSnapshot, to: AnyMachineSnapshot): AnyTransitionDefinition[] {
  const before = new Set(activeNodes(from));
  const after = new Set(activeNodes(to));
  const out: AnyTransitionDefinition[] = [];
  for (const node of before) {
    if (after.has(node)) continue;
    for (const [type, list] of node.transitions) {
      if (!type.startsWith('xstate.done.state.')) continue;
      for (const t of list) if (t.target?.every((n) => after.has(n))) out.push(t);
    }
  }
  return out;
}
