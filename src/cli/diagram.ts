import { catalog, catalogEntry } from '../diagram/catalog.js';
import { machineGraph } from '../diagram/graph.js';
import { toMermaid } from '../diagram/mermaid.js';
import { machineSvg } from '../diagram/svg.js';
import { parseCommand, UsageError } from './args.js';
import type { Io } from './io.js';

const names = catalog.map((e) => e.name);

export const diagramHelp = `usage: keel diagram <${names.join('|')}> [--format mermaid|json|svg]

Prints a machine as a Mermaid stateDiagram-v2, generated from the machine
definition itself (the saga is the checkout example's machine).

options:
  --format mermaid   the diagram (default); paste it into Markdown as a \`\`\`mermaid block
  --format json      the machine as data: states (with parents and initial states) and transitions
  --format svg       the drawing the live viewer shows (laid out by elkjs), as a standalone SVG file
  -h, --help         this help
`;

/** `keel diagram`: prints a machine's diagram. */
export async function diagramCommand(argv: string[], io: Io): Promise<number> {
  const args = parseCommand('keel diagram', argv, { options: ['format'], positionals: 1 });
  if (args.help) {
    io.out(diagramHelp);
    return 0;
  }
  const name = args.positionals[0];
  if (name === undefined) throw new UsageError(`keel diagram: which machine? one of ${names.join(', ')}`);
  const entry = catalogEntry(name);
  if (!entry) throw new UsageError(`keel diagram: unknown machine '${name}' (one of ${names.join(', ')})`);
  const format = args.values.format ?? 'mermaid';
  const graph = machineGraph(entry.machine);
  if (format === 'mermaid') io.out(toMermaid(graph));
  else if (format === 'json') io.out(`${JSON.stringify(graph, null, 2)}\n`);
  else if (format === 'svg') io.out(`${await machineSvg(graph, { standalone: true })}\n`);
  else throw new UsageError(`keel diagram: --format must be mermaid, json or svg, got '${String(format)}'`);
  return 0;
}
