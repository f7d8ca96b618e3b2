/**
 * Before a bench run: compacts the Postgres system catalogs. Every test and
 * benchmark creates and drops schemas; where autovacuum is off or behind,
 * `pg_attribute` and its neighbours bloat (130 MB was seen) and every
 * statement that plans or creates anything slows, keel's and the anchors'
 * alike, so runs on the same machine disagree by a third.
 */
import pg from 'pg';

/** The database of the Postgres benchmarks: `KEEL_PG_URL`, default the local `test` database. */
export const PG_URL = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const CATALOGS = [
  'pg_attribute',
  'pg_depend',
  'pg_class',
  'pg_index',
  'pg_type',
  'pg_constraint',
  'pg_attrdef',
  'pg_proc',
  'pg_namespace',
];

/** VACUUM FULL of the catalogs schemas churn, then ANALYZE; says why when it cannot (no database, no superuser). */
export async function tidyCatalogs(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    const before = await c.query<{ size: string }>(
      "SELECT pg_size_pretty(pg_total_relation_size('pg_catalog.pg_attribute')) AS size",
    );
    for (const t of CATALOGS) await c.query(`VACUUM FULL pg_catalog.${t}`);
    await c.query('VACUUM ANALYZE');
    const after = await c.query<{ size: string }>(
      "SELECT pg_size_pretty(pg_total_relation_size('pg_catalog.pg_attribute')) AS size",
    );
    console.log(`postgres catalogs compacted (pg_attribute ${before.rows[0]!.size} -> ${after.rows[0]!.size})`);
  } catch (error) {
    console.log(`postgres catalogs not compacted: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await c.end().catch(() => {});
  }
}
