/**
 * `npm run bench [-- name ...]`: runs every `bench/<name>.ts` module (except the
 * harness, this runner, the README writer and files starting with `_`), or only the names given.
 *
 * Each module runs in its own Node process with `--expose-gc`: JIT state of one
 * benchmark cannot slow the next, heap readings get real GCs, and a module that
 * throws, crashes or hangs is reported while the others still run (the exit
 * code is then non-zero). The child prints the table and writes
 * `bench/results/<name>.json`. First the Postgres catalogs are compacted
 * (`_pgTidy.ts`), so runs on one machine compare.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PG_URL, tidyCatalogs } from './_pgTidy.js';
import { printTable, type TableRow, writeResults } from './harness.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const CHILD_ENV = 'KEEL_BENCH_MODULE';
const NOT_BENCHMARKS = new Set(['harness', 'run', 'readme']);
/** A benchmark that runs longer than this is killed and reported. */
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS) || 10 * 60_000;

/** Names of the benchmark modules in `bench/`. */
function available(): string[] {
  return readdirSync(benchDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -'.ts'.length))
    .filter((name) => !NOT_BENCHMARKS.has(name))
    .sort();
}

/** In the child: runs one module, prints its table, writes its results. */
async function runOne(name: string): Promise<void> {
  const mod = (await import(pathToFileURL(join(benchDir, `${name}.ts`)).href)) as {
    run?: () => Promise<TableRow[]>;
  };
  if (typeof mod.run !== 'function') throw new Error(`bench/${name}.ts does not export run()`);
  const started = Date.now();
  const rows = await mod.run();
  if (!Array.isArray(rows) || rows.length === 0) throw new Error(`bench/${name}.ts returned no rows`);
  printTable(`${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`, rows);
  console.log(`wrote ${writeResults(name, rows)}`);
}

/** In the parent: one child process per module; returns the names that failed. */
function runAll(names: readonly string[]): string[] {
  // Keep the loader flags this process got (tsx), add --expose-gc once.
  const execArgv = [...process.execArgv.filter((a) => a !== '--expose-gc'), '--expose-gc'];
  const failed: string[] = [];
  for (const name of names) {
    const child = spawnSync(process.execPath, [...execArgv, fileURLToPath(import.meta.url)], {
      stdio: 'inherit',
      env: { ...process.env, [CHILD_ENV]: name },
      timeout: TIMEOUT_MS,
    });
    if (child.status !== 0) {
      const why = child.error
        ? child.error.message
        : child.signal
          ? `killed by ${child.signal}`
          : `exit code ${child.status}`;
      console.error(`\nbench ${name}: FAILED (${why})`);
      failed.push(name);
    }
  }
  return failed;
}

async function main(): Promise<void> {
  const child = process.env[CHILD_ENV];
  if (child) {
    try {
      await runOne(child);
    } catch (error) {
      console.error(`\nbench ${child} threw:`, error);
      process.exitCode = 1;
    }
    return;
  }
  const all = available();
  const asked = process.argv.slice(2).filter((a) => a !== '--');
  const unknown = asked.filter((n) => !all.includes(n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${all.join(', ') || 'none'}`);
    process.exitCode = 2;
    return;
  }
  const names = asked.length > 0 ? asked : all;
  await tidyCatalogs(PG_URL);
  const failed = runAll(names);
  const ok = names.length - failed.length;
  console.log(`\n${ok}/${names.length} benchmark(s) done${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
  if (failed.length > 0) process.exitCode = 1;
}

await main();
