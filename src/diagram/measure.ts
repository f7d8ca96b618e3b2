/** A rectangle: top-left corner and size, in diagram pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The diagrams use a monospace font (`ui-monospace, monospace`: a glyph is
 * 0.6 em wide in DejaVu Sans Mono, Menlo and Consolas alike), so a text's
 * width follows from its length without a browser to measure it. The sizes
 * here and the font sizes in `svg.ts` and the viewer's CSS must agree.
 */
export const FONT = {
  state: 11,
  label: 9.5,
  family: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
};
/** Slightly over 0.6 em, so a bold (active) name or a wider fallback font still fits. */
const EM = 0.64;
export const LINE = { state: 34, label: 12 };

/** Width of `text` at `px` in the diagrams' monospace font. */
export function textWidth(text: string, px: number): number {
  return Math.ceil([...text].length * px * EM);
}

/** A leaf state's box: its name plus room on both sides. */
export function stateSize(name: string): { width: number; height: number } {
  return { width: Math.max(72, textWidth(name, FONT.state) + 28), height: LINE.state };
}

/** The title of a container (a compound or parallel state). */
export function titleSize(name: string): { width: number; height: number } {
  return { width: textWidth(name, FONT.state), height: 16 };
}

/** An edge label: one line per event. */
export function labelSize(lines: string[]): { width: number; height: number } {
  const widest = Math.max(0, ...lines.map((l) => textWidth(l, FONT.label)));
  return { width: widest + 6, height: lines.length * LINE.label + 4 };
}
