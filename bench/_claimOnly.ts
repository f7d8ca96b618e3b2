// Runs only the issue #15 rows (for a quick look): npx tsx bench/_claimOnly.ts [memory|sqlite|postgres|backlog]
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { memoryStore, postgresStore, sqliteStore } from '../src/index.js';
import { claimVariantRows, groupedBacklogRows } from './_claimVariants.js';
import { PG_URL } from './_pgTidy.js';
import { printTable } from './harness.js';

const URL = PG_URL;
const N = Number(process.env.BENCH_QUEUE_N) || 20_000;
const what = process.argv[2] ?? 'memory';
let seq = 0;
const pgStore = () => {
  const schema = `bench_claimonly_${process.pid}_${++seq}`;
  return {
    store: postgresStore({ connectionString: URL, schema }),
    dispose: async () => {
      const c = new pg.Client({ connectionString: URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    },
  };
};
const rows =
  what === 'memory'
    ? await claimVariantRows('memory', () => ({ store: memoryStore() }), N, 3)
    : what === 'sqlite'
      ? await claimVariantRows(
          'sqlite',
          () => {
            const path = join(tmpdir(), `keel-claimonly-${process.pid}-${++seq}.db`);
            return { store: sqliteStore({ path }), dispose: () => rmSync(path, { force: true }) };
          },
          N,
          3,
        )
      : what === 'postgres'
        ? await claimVariantRows('postgres', pgStore, N, 3)
        : await groupedBacklogRows(
            'postgres',
            pgStore,
            Number(process.env.KEEL_BENCH_GROUPED_BACKLOG) || 100_000,
            10_000,
            3,
          );
printTable(`claim variants: ${what}`, rows);
