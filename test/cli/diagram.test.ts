import { describe, expect, it } from 'vitest';
import { catalog } from '../../src/diagram/catalog.js';
import { flatten } from '../../src/diagram/flat.js';
import { machineGraph } from '../../src/diagram/graph.js';
import { toMermaid } from '../../src/diagram/mermaid.js';
import { machineSvg } from '../../src/diagram/svg.js';
import { queueMachine } from '../../src/machines/queue.js';
import { transitionsOf } from '../../src/testing/coverage.js';
import { cli } from './run.js';

describe('machine diagrams', () => {
  it('keel diagram prints each machine as Mermaid, generated from its definition', async () => {
    for (const { name, machine } of catalog) {
      const r = await cli('diagram', name);
      expect(r.code).toBe(0);
      expect(r.out).toBe(toMermaid(machineGraph(machine)));
      const lines = r.out.trimEnd().split('\n');
      expect(lines[0]).toBe('stateDiagram-v2');
      // Every line is one Mermaid knows: a state, a transition, a start/end, or the note.
      for (const line of lines.slice(1)) {
        expect(line, `${name}: ${line}`).toMatch(
          /^ {2}(state "[\w.]+" as \w+|(\[\*\]|\w+) --> (\[\*\]|\w+)(: [^:;#]+)?|note right of \w+| {2}in every state: .+|end note)$/,
        );
      }
      // Every transition of the machine (each guarded branch) has its own line.
      const arrows = lines.filter((l) => l.includes('-->') && !l.includes('[*]')).length;
      const rootOnly = transitionsOf(machine).filter((t) => t.source === machine.root).length;
      expect(arrows, name).toBeGreaterThanOrEqual(transitionsOf(machine).length - rootOnly);
    }
  });

  it('shows breaker transitions with their events and guards', async () => {
    const { out } = await cli('diagram', 'breaker', '--format', 'mermaid');
    expect(out).toContain('  [*] --> closed\n');
    expect(out).toContain('  closed --> open: call.failure [reachesFailureThreshold]\n');
    expect(out).toContain('  open --> halfOpen: after openDelay\n');
    expect(out).toContain('  halfOpen --> halfOpen: trial.start [hasTrialRoom]\n');
  });

  it('--format json gives states with parents and initial states, and every transition', async () => {
    const { code, out } = await cli('diagram', 'queue', '--format', 'json');
    expect(code).toBe(0);
    const graph = JSON.parse(out) as ReturnType<typeof machineGraph>;
    expect(graph.id).toBe('queue');
    expect(graph.initial).toBe('idle');
    expect(graph.states.find((s) => s.id === 'running')).toMatchObject({
      type: 'compound',
      initial: 'running.working',
      children: ['running.working', 'running.gated', 'running.paused'],
    });
    expect(graph.states.find((s) => s.id === 'running.paused')).toMatchObject({ parent: 'running', key: 'paused' });
    expect(graph.transitions).toContainEqual({
      source: 'idle',
      targets: ['running.paused'],
      event: 'queue.start',
      label: 'queue.start',
      guard: 'startsPaused',
      actions: [],
    });
    expect(graph.transitions.length).toBe(transitionsOf(queueMachine).length);
  });

  it('flattens hierarchy: a compound source becomes each of its leaves, a compound target its initial leaf', () => {
    const flat = flatten(machineGraph(queueMachine));
    expect(flat.nodes.map((n) => n.id)).toEqual([
      'idle',
      'running.working',
      'running.gated',
      'running.paused',
      'stopping',
      'aborting',
      'stopped',
    ]);
    expect(flat.edges).toContainEqual({ from: 'running.working', to: 'stopping', label: 'queue.stop' });
    expect(flat.edges).toContainEqual({ from: 'running.paused', to: 'stopping', label: 'queue.stop' });
    expect(flat.edges).toContainEqual({ from: 'idle', to: 'running.working', label: 'queue.start' });
    expect(flat.edges).toContainEqual({ from: 'idle', to: 'idle', label: 'queue.pause' });
  });

  it('draws an SVG with one addressable box per leaf state', async () => {
    for (const { machine } of catalog) {
      const graph = machineGraph(machine);
      const svg = await machineSvg(graph);
      expect(svg.startsWith('<svg')).toBe(true);
      for (const n of flatten(graph).nodes) expect(svg).toContain(`data-state="${n.id}"`);
      expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    }
  });

  it('keel diagram --format svg prints the drawing the viewer shows, styled to stand alone', async () => {
    const { code, out } = await cli('diagram', 'saga', '--format', 'svg');
    expect(code).toBe(0);
    expect(out).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" class="machine"/);
    expect(out).toContain('<style>');
    expect(out).toContain('class="state compound" data-state="compensating"');
    expect(out).toContain('data-state="compensating.deductInventory"');
    expect((await cli('diagram', 'saga', '--format', 'png')).err).toContain('mermaid, json or svg');
  });
});
