import type { MachineGraph } from './graph.js';
import { type DiagramLayout, layoutGraph } from './layout.js';
import { FONT, LINE } from './measure.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const n = (v: number) => String(Math.round(v * 10) / 10);
const path = (points: Array<{ x: number; y: number }>) =>
  points.map((p, i) => `${i === 0 ? 'M' : 'L'}${n(p.x)},${n(p.y)}`).join(' ');

/** The look of a diagram opened on its own; the viewer's stylesheet gives the same sizes on its page. */
const STANDALONE_STYLE =
  `svg.machine{font:${FONT.state}px ${FONT.family};background:#fff}` +
  '.state rect{fill:#f4f6f8;stroke:#4b5d70;stroke-width:1.2}.state.final rect{stroke-width:3}' +
  '.state.compound>rect,.state.parallel>rect{fill:none;stroke-dasharray:4 3}.state .title{font-weight:bold}' +
  `.edge path,.start path{fill:none;stroke:#5d7185}.edge text,.everywhere{font-size:${FONT.label}px;fill:#333}` +
  'marker path,.start circle{fill:#5d7185}';

/** Options of `toSvg`. */
export interface SvgOptions {
  /** Embed a style sheet so the file renders the same outside the viewer (`keel diagram --format svg`). */
  standalone?: boolean;
}

/**
 * Draws a laid-out machine as SVG: containers for compound and parallel
 * states, one box per leaf state (`data-state` = its path, so a page can
 * highlight the active ones with a class), arrows with one label line per
 * event (`data-from`/`data-to` = the states they join), and start dots.
 */
export function toSvg(layout: DiagramLayout, options: SvgOptions = {}): string {
  const parts: string[] = [];
  const containers = layout.states.filter((s) => s.kind === 'compound' || s.kind === 'parallel');
  const leaves = layout.states.filter((s) => s.kind === 'atomic' || s.kind === 'final');
  for (const s of containers) {
    parts.push(
      `<g class="state ${s.kind}" data-state="${esc(s.id)}"><title>${esc(s.id)}</title>` +
        `<rect x="${n(s.x)}" y="${n(s.y)}" width="${n(s.width)}" height="${n(s.height)}" rx="12"/>` +
        `<text class="title" x="${n(s.x + 12)}" y="${n(s.y + 19)}">${esc(s.text)}</text></g>`,
    );
  }
  for (const st of layout.starts) {
    parts.push(
      `<g class="start" data-to="${esc(st.to)}"><circle cx="${n(st.x)}" cy="${n(st.y)}" r="5"/>` +
        `<path d="${path(st.points)}" marker-end="url(#arrow)"/></g>`,
    );
  }
  for (const e of layout.edges) {
    const tspans = e.lines
      .map(
        (line, i) => `<tspan x="${n(e.label.x + 3)}" y="${n(e.label.y + 2 + i * LINE.label + 9)}">${esc(line)}</tspan>`,
      )
      .join('');
    parts.push(
      `<g class="edge" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><path d="${path(e.points)}" marker-end="url(#arrow)"/>` +
        `<text>${tspans}</text></g>`,
    );
  }
  for (const s of leaves) {
    const cls = s.kind === 'final' ? 'state final' : 'state';
    parts.push(
      `<g class="${cls}" data-state="${esc(s.id)}"><title>${esc(s.id)}</title>` +
        `<rect x="${n(s.x)}" y="${n(s.y)}" width="${n(s.width)}" height="${n(s.height)}" rx="10"/>` +
        `<text x="${n(s.x + s.width / 2)}" y="${n(s.y + s.height / 2 + 4)}" text-anchor="middle">${esc(s.text)}</text></g>`,
    );
  }
  if (layout.everywhere) {
    const w = layout.everywhere;
    parts.push(`<text class="everywhere" x="${n(w.x + 3)}" y="${n(w.y + 11)}">${esc(w.text)}</text>`);
  }
  const defs =
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
    `<path d="M0,0 L10,5 L0,10 z"/></marker></defs>${options.standalone ? `<style>${STANDALONE_STYLE}</style>` : ''}`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="machine" data-machine="${esc(layout.id)}" viewBox="0 0 ${layout.width} ${layout.height}" width="${layout.width}" height="${layout.height}">` +
    `${defs}${parts.join('')}</svg>`
  );
}

/** Lays out (once per definition, see `layoutGraph`) and draws a machine. */
export async function machineSvg(graph: MachineGraph, options: SvgOptions = {}): Promise<string> {
  return toSvg(await layoutGraph(graph), options);
}
