/**
 * DBOS Transact (`@dbos-inc/dbos-sdk@5`) running the saga benchmark's shapes
 * as durable workflows, its system tables in a schema of their own on the
 * same Postgres as keel. (`_`: not a benchmark of its own.)
 *
 * - `checkout`: the 3-step checkout, one `DBOS.runStep` per step, the
 *   compensation list kept by hand (DBOS has no saga helper).
 * - `parallelSleep`: a step, then a parallel pair (two `DBOS.runStep` started
 *   at once and awaited with `Promise.all`, in a fixed start order as DBOS
 *   requires), then a durable zero-length `DBOS.sleep(0)`.
 * - `signal`: a step, then `DBOS.recv('payment.confirmed')`; the caller starts
 *   it (`DBOS.startWorkflow`), sends the message (`DBOS.send`) and awaits the result.
 *
 * DBOS is a process-wide singleton: workflows are registered once, and
 * `launchDbos` may launch it again (after `shutdown`) with another configuration.
 */
import { DBOS, type DBOSConfig } from '@dbos-inc/dbos-sdk';

/** The topic of the signal round trip. */
const TOPIC = 'payment.confirmed';

/** A step of the benchmark's sagas. */
export interface BenchStep {
  name: string;
  run: () => unknown;
  compensate?: () => unknown;
}

/** A launched DBOS app. */
export interface DbosApp {
  /** Runs the 3-step checkout workflow to its end. */
  checkout(input: unknown): Promise<unknown>;
  /** Runs step, parallel pair, zero-length sleep to the end. */
  parallelSleep(input: unknown): Promise<unknown>;
  /** Starts the signal workflow, sends it the message, awaits its result. */
  signalRoundTrip(input: unknown): Promise<unknown>;
  shutdown(): Promise<void>;
}

/** How DBOS is configured: its defaults, or the settings its docs give for latency and fan-out. */
export type DbosSetup = 'default' | 'tuned';

/**
 * The tuned setup, from the options' own documentation (DBOSConfig in
 * `dbos-executor.d.ts`): `notificationCoalesceMs` "bounds read latency"
 * (default 10, min 1), so 1; a system pool of 20 instead of 10, since half of
 * it is reserved for polling reads (`systemDatabasePollingConcurrency`) and
 * the batch rows run 100 workflows at once. `recv` then polls every 1 ms.
 */
const TUNED: Partial<DBOSConfig> = { notificationCoalesceMs: 1, systemDatabasePoolSize: 20 };

let registered: Omit<DbosApp, 'shutdown'> | undefined;

function register(
  checkoutSteps: readonly BenchStep[],
  shaped: { first: BenchStep; pair: readonly [BenchStep, BenchStep] },
  tuned: () => boolean,
): Omit<DbosApp, 'shutdown'> {
  const checkout = DBOS.registerWorkflow(
    async (_input: unknown) => {
      const results: Record<string, unknown> = {};
      const undo: Array<() => unknown> = [];
      try {
        for (const s of checkoutSteps) {
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
  const parallelSleep = DBOS.registerWorkflow(
    async (_input: unknown) => {
      const { first, pair } = shaped;
      const results: Record<string, unknown> = {};
      results[first.name] = await DBOS.runStep(async () => first.run(), { name: first.name });
      const [a, b] = await Promise.all(pair.map((s) => DBOS.runStep(async () => s.run(), { name: s.name })));
      results[pair[0].name] = a;
      results[pair[1].name] = b;
      await DBOS.sleep(0);
      return results;
    },
    { name: 'parallelSleep' },
  );
  const signal = DBOS.registerWorkflow(
    async (_input: unknown) => {
      const { first } = shaped;
      const created = await DBOS.runStep(async () => first.run(), { name: first.name });
      const paid = await DBOS.recv<unknown>(TOPIC, tuned() ? { timeoutSeconds: 60, pollingIntervalMs: 1 } : 60);
      if (paid === null) throw new Error('no payment.confirmed within 60 s');
      return { [first.name]: created, paid };
    },
    { name: 'signal' },
  );
  return {
    checkout: (input) => checkout(input),
    parallelSleep: (input) => parallelSleep(input),
    signalRoundTrip: async (input) => {
      const handle = await DBOS.startWorkflow(signal)(input);
      await DBOS.send(handle.workflowID, { ok: true }, TOPIC);
      return handle.getResult();
    },
  };
}

let setup: DbosSetup = 'default';

/** Launches DBOS on `url`, system tables in `schema`, configured as `how`; the workflows are registered on first use. */
export async function launchDbos(
  url: string,
  schema: string,
  steps: { checkout: readonly BenchStep[]; first: BenchStep; pair: readonly [BenchStep, BenchStep] },
  how: DbosSetup = 'default',
): Promise<DbosApp> {
  setup = how;
  DBOS.setConfig({
    name: 'keel-bench',
    systemDatabaseUrl: url,
    systemDatabaseSchemaName: schema,
    logLevel: 'error',
    ...(how === 'tuned' ? TUNED : {}),
  });
  registered ??= register(steps.checkout, steps, () => setup === 'tuned');
  await DBOS.launch();
  return { ...registered, shutdown: () => DBOS.shutdown() };
}
