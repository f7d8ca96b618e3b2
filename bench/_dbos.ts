/**
 * DBOS Transact (`@dbos-inc/dbos-sdk@5`) running the saga benchmark's 3-step
 * checkout as a durable workflow (`DBOS.registerWorkflow`, one `DBOS.runStep`
 * per step, the compensation list kept by hand as DBOS has no saga helper),
 * its system tables in a schema of their own on the same Postgres as keel.
 * (`_`: not a benchmark of its own.)
 */
import { DBOS } from '@dbos-inc/dbos-sdk';

/** A launched DBOS app: `checkout(input)` runs one workflow to its end. */
export interface DbosCheckout {
  checkout(input: unknown): Promise<unknown>;
  shutdown(): Promise<void>;
}

/** Launches DBOS on `url`, system tables in `schema`; `steps` are the benchmark's saga steps. */
export async function launchDbos(
  url: string,
  schema: string,
  steps: readonly { name: string; run: () => unknown; compensate?: () => unknown }[],
): Promise<DbosCheckout> {
  DBOS.setConfig({ name: 'keel-bench', systemDatabaseUrl: url, systemDatabaseSchemaName: schema, logLevel: 'error' });
  const workflow = DBOS.registerWorkflow(
    async (_input: unknown) => {
      const results: Record<string, unknown> = {};
      const undo: Array<() => unknown> = [];
      try {
        for (const s of steps) {
          results[s.name] = await DBOS.runStep(async () => s.run(), { name: s.name });
          if (s.compensate) undo.push(s.compensate);
        }
        return results;
      } catch (error) {
        for (const u of undo.reverse()) await DBOS.runStep(async () => u(), { name: 'compensate' });
        throw error;
      }
    },
    { name: 'checkout' },
  );
  await DBOS.launch();
  return { checkout: (input) => workflow(input), shutdown: () => DBOS.shutdown() };
}
