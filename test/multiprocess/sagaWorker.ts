/**
 * The runtime the saga ownership test kills: it starts saga `transfer` with
 * id `s1` on a shared Postgres schema and prints `RUN <step>` as each step
 * starts; step `b` never finishes here, so the saga is mid-flight when the
 * test sends SIGKILL.
 * Usage: node --import tsx test/multiprocess/sagaWorker.ts <connectionString> <schema> <sagaLeaseMs>
 */
import { createRuntime, postgresStore } from '../../src/index.js';

const [connectionString, schema, leaseMs] = process.argv.slice(2);
const rt = createRuntime({
  store: postgresStore({ connectionString: connectionString!, schema: schema!, sagaLeaseMs: Number(leaseMs) }),
  onError: () => {},
});
const step = (name: string, run: () => Promise<unknown>) => ({
  name,
  run: async () => {
    process.stdout.write(`RUN ${name}\n`);
    return run();
  },
});
const transfer = rt.saga('transfer', {
  steps: [step('a', async () => 'a-done'), step('b', () => new Promise(() => {})), step('c', async () => 'c-done')],
});
await rt.start();
void transfer.execute({ amount: 5 }, { id: 's1' }).catch(() => {});
