import { type FlatEdge, flatten } from './flat.js';
import type { MachineGraph } from './graph.js';

const W = 150;
const H = 34;
const COL = 260;
const ROW = 64;
const PAD = 28;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Where each leaf state goes: its column is the length of the shortest path from the initial state. */
function layout(
  nodes: string[],
  edges: FlatEdge[],
  initial: string | undefined,
): Map<string, { x: number; y: number }> {
  const rank = new Map<string, number>();
  const queue = initial !== undefined ? [initial] : [];
  if (initial !== undefined) rank.set(initial, 0);
  while (queue.length > 0) {
    const n = queue.shift() as string;
    for (const e of edges) {
      if (e.from === n && !rank.has(e.to)) {
        rank.set(e.to, (rank.get(n) ?? 0) + 1);
        queue.push(e.to);
      }
    }
  }
  const last = Math.max(0, ...rank.values());
  const rows = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const n of nodes) {
    const r = rank.get(n) ?? last + 1;
    const row = rows.get(r) ?? 0;
    rows.set(r, row + 1);
    at.set(n, { x: PAD + r * COL, y: PAD + row * ROW });
  }
  return at;
}

/**
 * The machine as a standalone SVG: one box per leaf state (`data-state` = its
 * path, so a page can highlight the active ones with a class), arrows with
 * their events, self-loops for transitions that stay. Layered left to right by
 * distance from the initial state; no layout library, so the viewer needs no
 * download.
 */
export function toSvg(graph: MachineGraph): string {
  const flat = flatten(graph);
  const ids = flat.nodes.map((n) => n.id);
  const at = layout(ids, flat.edges, flat.initial);
  const parts: string[] = [];
  // Edges with the same ends share one arrow and list their events.
  // Guards stay in the Mermaid text; on a small live diagram the events alone keep the labels readable.
  const merged = new Map<string, { from: string; to: string; labels: string[] }>();
  for (const e of flat.edges) {
    const k = `${e.from}\u0000${e.to}`;
    const m = merged.get(k) ?? { from: e.from, to: e.to, labels: [] };
    const event = e.label.replace(/ \[.*\]$/, '');
    if (!m.labels.includes(event)) m.labels.push(event);
    merged.set(k, m);
  }
  const labels: Array<{ x: number; y: number; text: string }> = [];
  const edge = (d: string, x: number, y: number, text: string, from: string, to: string) => {
    labels.push({ x, y, text });
    return (
      `<g class="edge" data-from="${esc(from)}" data-to="${esc(to)}"><path d="${d}" marker-end="url(#arrow)"/>` +
      `<text x="${x}" y="${y}" text-anchor="middle">${esc(text)}</text></g>`
    );
  };
  for (const { from, to, labels } of merged.values()) {
    const a = at.get(from);
    const b = at.get(to);
    if (!a || !b) continue;
    const text = labels.join(', ');
    if (from === to) {
      const x = a.x + W / 2;
      const d = `M${x - 20},${a.y} C${x - 30},${a.y - 34} ${x + 30},${a.y - 34} ${x + 20},${a.y}`;
      parts.push(edge(d, x, a.y - 30, text, from, to));
      continue;
    }
    const forward = b.x > a.x;
    const x1 = forward ? a.x + W : a.x + W / 2;
    const y1 = forward ? a.y + H / 2 : a.y + H;
    const x2 = forward ? b.x : b.x + W / 2;
    const y2 = forward ? b.y + H / 2 : b.y + H;
    // Backward and same-column edges bend below the boxes so they do not cross them.
    const bend = forward ? 0 : 46 + Math.abs(a.x - b.x) / 12;
    const cx = (x1 + x2) / 2;
    const cy = (y1 + y2) / 2 + bend;
    const d = forward
      ? `M${x1},${y1} C${cx},${y1} ${cx},${y2} ${x2},${y2}`
      : `M${x1},${y1} Q${cx},${cy + bend} ${x2},${y2}`;
    parts.push(edge(d, cx, forward ? cy - 4 : cy + bend / 2 + 4, text, from, to));
  }
  for (const n of flat.nodes) {
    const p = at.get(n.id) as { x: number; y: number };
    const cls = n.final ? 'state final' : 'state';
    parts.push(
      `<g class="${cls}" data-state="${esc(n.id)}"><rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="10"/>` +
        `<text x="${p.x + W / 2}" y="${p.y + H / 2 + 4}" text-anchor="middle">${esc(n.id)}</text></g>`,
    );
  }
  if (flat.initial !== undefined) {
    const p = at.get(flat.initial) as { x: number; y: number };
    parts.push(`<circle class="start" cx="${p.x - 14}" cy="${p.y + H / 2}" r="5"/>`);
  }
  // The box holds every state and every label (about 6 px per character at the viewer's font size).
  const boxes = [
    ...[...at.values()].map((p) => ({ x1: p.x - 20, y1: p.y - 36, x2: p.x + W, y2: p.y + H })),
    ...labels.map((l) => ({ x1: l.x - l.text.length * 3, y1: l.y - 10, x2: l.x + l.text.length * 3, y2: l.y + 4 })),
  ];
  const x0 = Math.min(...boxes.map((b) => b.x1)) - 8;
  const y0 = Math.min(...boxes.map((b) => b.y1)) - 8;
  const width = Math.ceil(Math.max(...boxes.map((b) => b.x2)) + 8 - x0);
  const height = Math.ceil(Math.max(...boxes.map((b) => b.y2)) + 8 - y0);
  const defs =
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
    '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="machine" data-machine="${esc(graph.id)}" viewBox="${x0} ${y0} ${width} ${height}" width="${width}" height="${height}">` +
    `${defs}${parts.join('')}</svg>`
  );
}
