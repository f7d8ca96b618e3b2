/**
 * Start-up: how long `import('keel')` takes in a fresh Node process (the built
 * package, as an app loads it), beside `import('bullmq')` and `import('cockatiel')`.
 * Each run is a new plain-`node` process (no TypeScript loader) that times only its
 * dynamic import; the three alternate run by run and the median of each is kept.
 * Rows are imports per second (1000 / median ms), so a ratio above 1 means keel
 * loads faster. Goal: keel no slower than bullmq.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { median, ratio, type TableRow } from './harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const RUNS = Number(process.env.BENCH_STARTUP_RUNS) || 15;

/** Milliseconds one fresh process spends in `import(specifier)`. */
function importMs(specifier: string): number {
  const code = `const t = performance.now(); await import(${JSON.stringify(specifier)}); console.log(performance.now() - t);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`import('${specifier}') failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

export async function run(): Promise<TableRow[]> {
  // 'keel' resolves through package.json exports to dist/: build it when missing.
  if (!existsSync(`${root}dist/index.js`))
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  const names = ['keel', 'bullmq', 'cockatiel'];
  const samples = new Map(names.map((n) => [n, [] as number[]]));
  for (const n of names) importMs(n); // warm the file-system cache
  for (let i = 0; i < RUNS; i++) for (const n of names) samples.get(n)?.push(importMs(n));
  const ms = (n: string) => median(samples.get(n) ?? []);
  for (const n of names) console.log(`import('${n}'): median ${ms(n).toFixed(1)} ms over ${RUNS} fresh processes`);
  return names.slice(1).map((vs) => ({
    name: `import() in a fresh process (ms: keel ${ms('keel').toFixed(1)}, ${vs} ${ms(vs).toFixed(1)})`,
    opsPerSec: Math.round((1000 / ms('keel')) * 100) / 100,
    vs,
    vsOpsPerSec: Math.round((1000 / ms(vs)) * 100) / 100,
    ratio: ratio(ms(vs), ms('keel')),
  }));
}
