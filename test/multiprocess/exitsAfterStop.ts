/**
 * Must exit by itself once the runtime stops: every pooled connection, the
 * LISTEN connection, the bus bridge and the saga ownership timer are released.
 * Usage: node --import tsx test/multiprocess/exitsAfterStop.ts <connectionString> <schema>
 */
import { createRuntime, postgresStore } from '../../src/index.js';

const [connectionString, schema] = process.argv.slice(2);
const rt = createRuntime({ store: postgresStore({ connectionString: connectionString!, schema: schema!, bus: true }) });
const q = rt.queue('exit', { handler: async () => {} });
const saga = rt.saga('exit', { steps: [{ name: 'one', run: async () => 1 }] });
rt.bus.subscribe('x', () => {});
await rt.start();
await q.enqueue({ n: 1 });
await q.drain();
await saga.execute({});
rt.bus.publish('x', 1);
await rt.stop();
process.stdout.write('STOPPED\n');
