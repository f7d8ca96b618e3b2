import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { catalog } from '../../src/diagram/catalog.js';
import { machineGraph } from '../../src/diagram/graph.js';
import { toMermaid } from '../../src/diagram/mermaid.js';
import { currentBlock, diagramsBlock, END, MissingMarkersError, START, withBlock } from '../../src/diagram/readme.js';
import { breakerMachine } from '../../src/machines/breaker.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('README diagrams', () => {
  it('are the ones the machines generate now (else run `npm run docs`)', () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    const block = currentBlock(readme);
    if (block !== diagramsBlock()) {
      expect.fail('README.md: the machine diagrams are out of date; run `npm run docs` and commit README.md');
    }
    for (const { machine } of catalog) expect(block).toContain(toMermaid(machineGraph(machine)));
  });

  it('change when a machine changes', () => {
    const before = toMermaid(machineGraph(breakerMachine));
    const { config } = breakerMachine;
    const changed = createMachine({
      ...config,
      states: { ...config.states, closed: { on: { ...config.states?.closed?.on, trip: 'open' } } },
    } as typeof config);
    const after = toMermaid(machineGraph(changed));
    expect(after).not.toBe(before);
    expect(after).toContain('  closed --> open: trip\n');
  });

  it('replace only the text between the markers', () => {
    const readme = `# x\n\nintro\n${START}\nold\n${END}\n\nrest\n`;
    expect(withBlock(readme, 'new\n')).toBe(`# x\n\nintro\n${START}\nnew\n${END}\n\nrest\n`);
    expect(currentBlock(withBlock(readme, 'new\n'))).toBe('new\n');
    expect(() => currentBlock('# no markers\n')).toThrow(MissingMarkersError);
    expect(() => currentBlock('# no markers\n')).toThrow(/add the lines '<!-- diagrams:start -->'/);
  });

  it('`npm run docs -- --check` passes on an up-to-date README', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/docs.ts', '--check'], {
      cwd: root,
    });
    expect(stdout).toContain('up to date');
  });
});
