import { describe, expect, it } from 'vitest';
import { catalog } from '../../src/diagram/catalog.js';
import { machineGraph } from '../../src/diagram/graph.js';
import { type DiagramLayout, layoutGraph } from '../../src/diagram/layout.js';
import { FONT, textWidth } from '../../src/diagram/measure.js';
import { createSagaMachine } from '../../src/machines/saga.js';
import { type DrawnDiagram, problems } from './geometry.js';

/** A saga with long step names, a step undone also when it fails, and a last step with nothing to undo. */
const longSaga = createSagaMachine('fulfilment', [
  { name: 'reserveWarehouseSlot', compensable: true },
  { name: 'deductInventory', compensable: true, undoOnFailure: true },
  { name: 'authorizePaymentWithProvider', compensable: true },
  { name: 'notifyCustomerByEmailAndSms', compensable: false },
]);

/** The layout's own boxes, with each text as wide as `measure.ts` says. */
function drawn(name: string, l: DiagramLayout): DrawnDiagram {
  const byId = new Map(l.states.map((s) => [s.id, s]));
  return {
    name,
    leaves: l.states
      .filter((s) => s.kind === 'atomic' || s.kind === 'final')
      .map((s) => {
        const w = textWidth(s.text, FONT.state);
        return { id: s.id, box: s, text: { x: s.x + (s.width - w) / 2, y: s.y + 8, width: w, height: 14 } };
      }),
    containers: l.states
      .filter((s) => s.kind === 'compound' || s.kind === 'parallel')
      .map((s) => ({
        id: s.id,
        box: s,
        title: { x: s.x + 12, y: s.y + 8, width: textWidth(s.text, FONT.state), height: 14 },
        children: [...byId.keys()].filter((id) => id.startsWith(`${s.id}.`)),
      })),
    edges: l.edges.map((e) => ({
      from: e.from,
      to: e.to,
      label: e.label,
      start: e.points[0] ?? { x: Number.NaN, y: 0 },
      end: e.points.at(-1) ?? { x: Number.NaN, y: 0 },
    })),
    notes: l.everywhere ? [l.everywhere] : [],
  };
}

const machines = [...catalog.map((e) => [e.name, e.machine] as const), ['fulfilment saga', longSaga] as const];

describe('diagram layout (elkjs)', () => {
  it.each(machines)(
    '%s: no label on a box or a label, every name fits, edges join their own boxes',
    async (name, m) => {
      const layout = await layoutGraph(machineGraph(m));
      expect(problems(drawn(name, layout))).toEqual([]);
      // Every transition is drawn (transitions of the root are the note).
      const graph = machineGraph(m);
      for (const t of graph.transitions.filter((x) => x.source !== '')) {
        for (const to of t.targets.length > 0 ? t.targets : [t.source]) {
          const edge = layout.edges.find((e) => e.from === t.source && e.to === to);
          expect(edge?.lines, `${t.source} → ${to}`).toContain(t.label);
        }
      }
    },
  );

  it('draws an edge between nested states between those boxes, and compound states as containers', async () => {
    const queue = catalog.find((e) => e.name === 'queue')?.machine;
    const layout = await layoutGraph(machineGraph(queue as never));
    expect(layout.states.find((s) => s.id === 'running')?.kind).toBe('compound');
    const pause = layout.edges.find((e) => e.from === 'running.working' && e.to === 'running.paused');
    expect(pause?.lines).toContain('queue.pause');
    const paused = layout.states.find((s) => s.id === 'running.paused');
    const end = pause?.points.at(-1);
    expect(end && paused && end.x >= paused.x - 1 && end.x <= paused.x + paused.width + 1).toBe(true);
    // `queue.stop` belongs to `running`, so it leaves the container, not each leaf.
    expect(layout.edges.filter((e) => e.lines.includes('queue.stop')).map((e) => e.from)).toContain('running');
  });

  it('sizes a box to its name: a long step name fits', async () => {
    const layout = await layoutGraph(machineGraph(longSaga));
    const box = layout.states.find((s) => s.id === 'compensating.authorizePaymentWithProvider');
    expect(box?.text).toBe('authorizePaymentWithProvider');
    expect(box?.width).toBeGreaterThanOrEqual(textWidth('authorizePaymentWithProvider', FONT.state) + 20);
  });

  it('lays out each definition once', async () => {
    const graph = machineGraph(longSaga);
    const first = layoutGraph(graph);
    expect(layoutGraph(machineGraph(longSaga))).toBe(first);
    await first;
  });
});
