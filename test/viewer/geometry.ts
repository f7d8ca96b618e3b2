/**
 * What makes a diagram readable, as checks on rectangles: the same rules for a
 * layout computed in Node (`layout.test.ts`) and for the boxes Chromium
 * actually draws (`test/e2e/diagrams.test.ts`).
 */

/** A rectangle in one coordinate space. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One drawn diagram, reduced to rectangles and edge end points. */
export interface DrawnDiagram {
  name: string;
  /** Leaf states: a box and the box of the name written in it. */
  leaves: Array<{ id: string; box: Rect; text: Rect }>;
  /** Compound and parallel states: a box, its title, and the ids of the states it holds. */
  containers: Array<{ id: string; box: Rect; title: Rect; children: string[] }>;
  /** Edge labels, with the ids of the states the edge joins and the route's first and last point. */
  edges: Array<{
    from: string;
    to: string;
    label: Rect;
    start: { x: number; y: number };
    end: { x: number; y: number };
  }>;
  /** Other text written on the diagram (the "in every state" line). */
  notes: Rect[];
}

/** Touching is fine; sharing more than this many pixels is an overlap. */
const EPS = 0.5;

const overlaps = (a: Rect, b: Rect) =>
  a.x < b.x + b.width - EPS && b.x < a.x + a.width - EPS && a.y < b.y + b.height - EPS && b.y < a.y + a.height - EPS;
const inside = (inner: Rect, outer: Rect) =>
  inner.x >= outer.x - EPS &&
  inner.y >= outer.y - EPS &&
  inner.x + inner.width <= outer.x + outer.width + EPS &&
  inner.y + inner.height <= outer.y + outer.height + EPS;
/** Distance from a point to the border of a rectangle (0 on it). */
function toBorder(p: { x: number; y: number }, r: Rect): number {
  const dx = Math.max(r.x - p.x, 0, p.x - (r.x + r.width));
  const dy = Math.max(r.y - p.y, 0, p.y - (r.y + r.height));
  if (dx > 0 || dy > 0) return Math.hypot(dx, dy);
  return Math.min(p.x - r.x, r.x + r.width - p.x, p.y - r.y, r.y + r.height - p.y);
}
const show = (r: Rect) => `(${r.x.toFixed(1)},${r.y.toFixed(1)} ${r.width.toFixed(1)}×${r.height.toFixed(1)})`;

/**
 * Every way the diagram is unreadable, as sentences (empty when it is fine):
 * 1. two state boxes overlap;
 * 2. an edge label overlaps a state box (its own edge's ends included), another
 *    label, a container's title or a note;
 * 3. an edge label crosses a container's border (it must be wholly in or out);
 * 4. a state's name or a container's title does not fit inside its box, or a
 *    container does not hold its children;
 * 5. an edge does not start on the border of the box it comes from or does not
 *    end on the border of the box it goes to (within `tolerance` px).
 */
export function problems(d: DrawnDiagram, tolerance = 2): string[] {
  const out: string[] = [];
  const boxes = new Map<string, Rect>([
    ...d.leaves.map((l) => [l.id, l.box] as const),
    ...d.containers.map((c) => [c.id, c.box] as const),
  ]);
  d.leaves.forEach((a, i) => {
    for (const b of d.leaves.slice(i + 1)) if (overlaps(a.box, b.box)) out.push(`state ${a.id} overlaps state ${b.id}`);
    if (!inside(a.text, a.box)) out.push(`the name of ${a.id} ${show(a.text)} does not fit its box ${show(a.box)}`);
  });
  for (const c of d.containers) {
    if (!inside(c.title, c.box)) out.push(`the title of ${c.id} ${show(c.title)} does not fit its box ${show(c.box)}`);
    for (const child of c.children) {
      const box = boxes.get(child);
      if (box && !inside(box, c.box)) out.push(`container ${c.id} does not hold ${child}`);
    }
    for (const l of d.leaves) if (overlaps(c.title, l.box)) out.push(`the title of ${c.id} overlaps state ${l.id}`);
  }
  d.edges.forEach((e, i) => {
    const name = `the label of ${e.from} → ${e.to} ${show(e.label)}`;
    for (const l of d.leaves) if (overlaps(e.label, l.box)) out.push(`${name} overlaps state ${l.id} ${show(l.box)}`);
    for (const f of d.edges.slice(i + 1)) {
      if (overlaps(e.label, f.label)) out.push(`${name} overlaps the label of ${f.from} → ${f.to} ${show(f.label)}`);
    }
    for (const c of d.containers) {
      if (overlaps(e.label, c.title)) out.push(`${name} overlaps the title of ${c.id}`);
      if (overlaps(e.label, c.box) && !inside(e.label, c.box)) out.push(`${name} crosses the border of ${c.id}`);
    }
    for (const n of d.notes) if (overlaps(e.label, n)) out.push(`${name} overlaps a note`);
    const from = boxes.get(e.from);
    const to = boxes.get(e.to);
    if (!from || !to) out.push(`edge ${e.from} → ${e.to} joins a state that is not drawn`);
    else {
      if (toBorder(e.start, from) > tolerance) out.push(`edge ${e.from} → ${e.to} does not start on ${e.from}`);
      if (toBorder(e.end, to) > tolerance) out.push(`edge ${e.from} → ${e.to} does not end on ${e.to}`);
    }
  });
  return out;
}
