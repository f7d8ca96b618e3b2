/**
 * Writes the latest `bench/results/*.json` into README.md between
 * `<!-- bench:start -->` and `<!-- bench:end -->` (`npm run bench:readme`),
 * so the README quotes exactly what the last run measured, and where.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, type Results, resultsDir } from './harness.js';

const order = ['bus', 'breaker', 'queue', 'queue-postgres', 'saga', 'startup'];

/** The markdown for every results file, in a fixed order. */
export function benchMarkdown(dir = resultsDir): string {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  const out: string[] = [];
  for (const name of names) {
    const r = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Results;
    out.push(`#### ${name} — ${r.date.slice(0, 16).replace('T', ' ')} UTC, Node ${r.node}, ${r.cpu}`, '');
    out.push('| case | keel | vs | anchor | ratio |', '|---|---:|---|---:|---:|');
    for (const row of r.rows) {
      const unit = row.name.startsWith('heap') ? ' B' : '/s';
      out.push(
        `| ${row.name} | ${fmt(row.opsPerSec)}${unit} | ${row.vs} | ${fmt(row.vsOpsPerSec)}${unit} | ${row.ratio.toFixed(2)}× |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

const readme = join(resultsDir, '..', '..', 'README.md');
const text = readFileSync(readme, 'utf8');
const start = text.indexOf('<!-- bench:start -->');
const end = text.indexOf('<!-- bench:end -->');
if (start < 0 || end < start) throw new Error('README.md has no <!-- bench:start --> ... <!-- bench:end --> block');
writeFileSync(readme, `${text.slice(0, start)}<!-- bench:start -->\n${benchMarkdown()}${text.slice(end)}`);
console.log('README.md: benchmark tables updated');
