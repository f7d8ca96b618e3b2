import { KeelError } from '../core/errors.js';
import type { MachineGraph } from './graph.js';
import { type Box, labelSize, stateSize, titleSize } from './measure.js';

/** A state placed on the diagram; compound and parallel states are containers around their children. */
export interface PlacedState extends Box {
  /** Path below the root (`running.working`), as in `MachineGraph`. */
  id: string;
  /** What the box says: the state's own key (its container says the rest). */
  text: string;
  kind: 'atomic' | 'final' | 'compound' | 'parallel';
}

/** One arrow: every transition between the same two states, with one label line per event. */
export interface PlacedEdge {
  /** Id of the state that defines the transitions (a container when a compound state defines them). */
  from: string;
  /** Id of the target; equal to `from` for a transition that stays. */
  to: string;
  /** The route, first point on `from`'s border, last on `to`'s. */
  points: Array<{ x: number; y: number }>;
  /** Event names, one line each, inside `label`. */
  lines: string[];
  label: Box;
}

/** A start dot and the arrow to the state it enters (the machine's initial state, or a container's). */
export interface PlacedStart {
  /** The state entered. */
  to: string;
  x: number;
  y: number;
  points: Array<{ x: number; y: number }>;
}

/** A machine laid out: everything in one coordinate space whose origin is the top-left corner. */
export interface DiagramLayout {
  id: string;
  width: number;
  height: number;
  /** Parents before children, so drawing in order puts containers behind what they hold. */
  states: PlacedState[];
  edges: PlacedEdge[];
  starts: PlacedStart[];
  /** Transitions of the root, which apply in every state; written under the diagram. */
  everywhere?: { text: string } & Box;
}

interface ElkLabelIn {
  text: string;
  width: number;
  height: number;
  x?: number;
  y?: number;
}
interface ElkNodeIn {
  id: string;
  width?: number;
  height?: number;
  x?: number;
  y?: number;
  children?: ElkNodeIn[];
  edges?: ElkEdgeIn[];
  layoutOptions?: Record<string, string>;
}
interface ElkEdgeIn {
  id: string;
  sources: string[];
  targets: string[];
  labels?: ElkLabelIn[];
  sections?: Array<{
    startPoint: { x: number; y: number };
    endPoint: { x: number; y: number };
    bendPoints?: Array<{ x: number; y: number }>;
  }>;
}
interface Elk {
  layout(graph: ElkNodeIn): Promise<ElkNodeIn>;
}

/** Space between the title of a container and its first child. */
const TITLE_ROOM = 26;
const START = 12;

/**
 * Options of the layered algorithm. Edge labels become nodes of their own in
 * the layering, so no label can sit on a box or on another label;
 * `INCLUDE_CHILDREN` lays out containers and their children as one graph, so
 * an edge between two nested states runs between those boxes.
 */
const ROOT_OPTIONS: Record<string, string> = {
  'elk.algorithm': 'layered',
  'elk.direction': 'RIGHT',
  'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.edgeLabels.placement': 'CENTER',
  'elk.layered.spacing.nodeNodeBetweenLayers': '36',
  'elk.layered.spacing.edgeNodeBetweenLayers': '14',
  'elk.layered.spacing.edgeEdgeBetweenLayers': '10',
  'elk.spacing.nodeNode': '22',
  'elk.spacing.edgeNode': '12',
  'elk.spacing.edgeEdge': '10',
  'elk.spacing.edgeLabel': '3',
  'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
  'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
  // States are listed in definition order, which reads as the machine's story: an edge back in that order is the one that loops.
  'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
  'elk.padding': '[top=12,left=12,bottom=12,right=12]',
  'elk.json.shapeCoords': 'ROOT',
  'elk.json.edgeCoords': 'ROOT',
};

let elk: Promise<Elk> | undefined;
/** elkjs is large: loaded on the first layout, so importing keel does not pay for it. */
function engine(): Promise<Elk> {
  elk ??= import('elkjs/lib/elk.bundled.js').then(
    (m) => {
      const ELK = (m as unknown as { default: new () => Elk }).default;
      return new ELK();
    },
    (error: unknown) => {
      // An optional peer: only the diagrams need it, and it is 8 MB an app without the viewer should not carry.
      throw new KeelError(
        'MISSING_DEPENDENCY',
        "machine diagrams need the package 'elkjs', which is not installed: run `npm i elkjs`",
        { cause: error },
      );
    },
  );
  return elk;
}

const cache = new Map<string, Promise<DiagramLayout>>();
/** Distinct machine definitions whose layouts are kept; sagas generate one machine per definition, not per run. */
const CACHE_LIMIT = 200;

/**
 * Lays out a machine with elkjs (layered, left to right): one box per state
 * sized to its name, containers for compound and parallel states, arrows
 * between the states that define and take each transition. Computed once per
 * distinct machine definition (the graph is the cache key) and reused.
 */
export function layoutGraph(graph: MachineGraph): Promise<DiagramLayout> {
  const key = JSON.stringify(graph);
  const hit = cache.get(key);
  if (hit) return hit;
  const laid = compute(graph);
  cache.set(key, laid);
  if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  // A failed layout must not stay cached: the next caller tries again.
  laid.catch(() => cache.delete(key));
  return laid;
}

/** Merges transitions with the same ends into one edge; a targetless transition loops on its source. */
function edgesOf(graph: MachineGraph): Array<{ from: string; to: string; lines: string[] }> {
  const merged = new Map<string, { from: string; to: string; lines: string[] }>();
  for (const t of graph.transitions) {
    if (t.source === '') continue;
    for (const to of t.targets.length > 0 ? t.targets : [t.source]) {
      const k = `${t.source}\u0000${to}`;
      const m = merged.get(k) ?? { from: t.source, to, lines: [] };
      // Guards stay in the Mermaid text and the JSON; on a live diagram the events alone keep the labels short.
      if (!m.lines.includes(t.label)) m.lines.push(t.label);
      merged.set(k, m);
    }
  }
  return [...merged.values()];
}

/** States a start dot points into: the root's initial state, and the initial child of every container some transition enters by its own name. */
function startsOf(graph: MachineGraph): Array<{ parent: string | undefined; to: string }> {
  const out: Array<{ parent: string | undefined; to: string }> = [];
  if (graph.initial !== undefined) out.push({ parent: undefined, to: graph.initial });
  const entered = new Set(graph.transitions.flatMap((t) => t.targets));
  if (graph.initial !== undefined) entered.add(graph.initial);
  for (const s of graph.states) {
    if (s.type === 'compound' && s.initial !== undefined && entered.has(s.id))
      out.push({ parent: s.id, to: s.initial });
  }
  return out;
}

const nodeId = (state: string) => `s:${state}`;
const startId = (parent: string | undefined) => `start:${parent ?? ''}`;

async function compute(graph: MachineGraph): Promise<DiagramLayout> {
  const byId = new Map(graph.states.map((s) => [s.id, s]));
  const elkNodes = new Map<string, ElkNodeIn>();
  const root: ElkNodeIn = { id: 'root', layoutOptions: ROOT_OPTIONS, children: [], edges: [] };
  for (const s of graph.states) {
    const container = s.children.length > 0;
    const size = container ? titleSize(s.key) : stateSize(s.key);
    const node: ElkNodeIn = container
      ? {
          id: nodeId(s.id),
          children: [],
          layoutOptions: {
            'elk.padding': `[top=${TITLE_ROOM + 8},left=12,bottom=12,right=12]`,
            'elk.nodeSize.constraints': '[MINIMUM_SIZE]',
            'elk.nodeSize.minimum': `(${size.width + 24},${TITLE_ROOM + 20})`,
          },
        }
      : { id: nodeId(s.id), width: size.width, height: size.height };
    elkNodes.set(s.id, node);
    const parent = s.parent === undefined ? root : elkNodes.get(s.parent);
    parent?.children?.push(node);
  }
  const starts = startsOf(graph);
  for (const st of starts) {
    const parent = st.parent === undefined ? root : elkNodes.get(st.parent);
    parent?.children?.unshift({
      id: startId(st.parent),
      width: START,
      height: START,
      layoutOptions: { 'elk.layered.layering.layerConstraint': 'FIRST' },
    });
    root.edges?.push({ id: `e:${startId(st.parent)}`, sources: [startId(st.parent)], targets: [nodeId(st.to)] });
  }
  const edges = edgesOf(graph);
  edges.forEach((e, i) => {
    const size = labelSize(e.lines);
    root.edges?.push({
      id: `e${i}`,
      sources: [nodeId(e.from)],
      targets: [nodeId(e.to)],
      labels: [{ text: e.lines.join('\n'), ...size }],
    });
  });

  const laid = await (await engine()).layout(root);

  const placed = new Map<string, ElkNodeIn>();
  const walk = (n: ElkNodeIn) => {
    placed.set(n.id, n);
    for (const c of n.children ?? []) walk(c);
  };
  walk(laid);
  const boxOf = (id: string): Box => {
    const n = placed.get(id);
    return { x: n?.x ?? 0, y: n?.y ?? 0, width: n?.width ?? 0, height: n?.height ?? 0 };
  };
  const routeOf = (id: string) => {
    const edge = laid.edges?.find((x) => x.id === id);
    const sections = edge?.sections ?? [];
    const points = sections.flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]);
    return { edge, points: points.map((p) => ({ x: p.x, y: p.y })) };
  };
  const states: PlacedState[] = graph.states.map((s) => {
    const type = byId.get(s.id)?.type;
    const kind: PlacedState['kind'] =
      type === 'parallel' ? 'parallel' : s.children.length > 0 ? 'compound' : type === 'final' ? 'final' : 'atomic';
    return { id: s.id, text: s.key, kind, ...boxOf(nodeId(s.id)) };
  });
  const placedEdges: PlacedEdge[] = edges.map((e, i) => {
    const { edge, points } = routeOf(`e${i}`);
    const l = edge?.labels?.[0];
    return {
      from: e.from,
      to: e.to,
      points,
      lines: e.lines,
      label: { x: l?.x ?? 0, y: l?.y ?? 0, width: l?.width ?? 0, height: l?.height ?? 0 },
    };
  });
  const placedStarts: PlacedStart[] = starts.map((st) => {
    const b = boxOf(startId(st.parent));
    return { to: st.to, x: b.x + START / 2, y: b.y + START / 2, points: routeOf(`e:${startId(st.parent)}`).points };
  });
  let width = laid.width ?? 0;
  let height = laid.height ?? 0;
  const everywhereLines = [...new Set(graph.transitions.filter((t) => t.source === '').map((t) => t.label))];
  let everywhere: DiagramLayout['everywhere'];
  if (everywhereLines.length > 0) {
    const text = `in every state: ${everywhereLines.join(', ')}`;
    const size = labelSize([text]);
    everywhere = { text, x: 12, y: height, ...size };
    height += size.height + 12;
    width = Math.max(width, size.width + 24);
  }
  return {
    id: graph.id,
    width: Math.ceil(width),
    height: Math.ceil(height),
    states,
    edges: placedEdges,
    starts: placedStarts,
    ...(everywhere ? { everywhere } : {}),
  };
}
