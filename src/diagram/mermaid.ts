import { flatten } from './flat.js';
import type { MachineGraph } from './graph.js';

/** Mermaid ids allow word characters only; dots in state paths become underscores. */
const mid = (id: string) => id.replace(/\W/g, '_');

/**
 * The machine as a Mermaid `stateDiagram-v2`: one node per leaf state
 * (labelled with its path), one line per transition and guarded branch,
 * `[*]` for the start and the final states, and a note for transitions the
 * machine takes in every state.
 */
export function toMermaid(graph: MachineGraph): string {
  const flat = flatten(graph);
  const lines = ['stateDiagram-v2'];
  for (const n of flat.nodes) lines.push(`  state "${n.id}" as ${mid(n.id)}`);
  if (flat.initial !== undefined) lines.push(`  [*] --> ${mid(flat.initial)}`);
  for (const e of flat.edges) lines.push(`  ${mid(e.from)} --> ${mid(e.to)}: ${e.label}`);
  for (const n of flat.nodes) if (n.final) lines.push(`  ${mid(n.id)} --> [*]`);
  if (flat.everywhere.length > 0 && flat.initial !== undefined) {
    lines.push(
      `  note right of ${mid(flat.initial)}`,
      `    in every state: ${flat.everywhere.join(', ')}`,
      '  end note',
    );
  }
  return `${lines.join('\n')}\n`;
}
