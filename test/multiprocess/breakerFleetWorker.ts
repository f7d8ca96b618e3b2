/**
 * One process of the fleet-breaker test: breaker `sms` (scope from argv) in
 * front of the test's hanging provider, one call at a time for `runMs`
 * after it is ready. Prints `READY` once it can start (fleet: joined), `OPENED <ms>`
 * when its breaker opens, `DONE <provider calls started>` at the end.
 * Usage: node --import tsx test/multiprocess/breakerFleetWorker.ts <pg url> <schema> <provider url> <scope> <runMs>
 */
import { CircuitOpenError, createRuntime, postgresStore } from '../../src/index.js';
import { FLEET_TEST_OPTIONS } from './breakerFleetOptions.js';

const [connectionString, schema, provider, scope, runMs] = process.argv.slice(2);
const rt = createRuntime({
  store: postgresStore({ connectionString: connectionString!, schema: schema!, poolSize: 2 }),
  onError: (error, detail) => process.stderr.write(`fleet worker ${process.pid}: ${detail}: ${String(error)}\n`),
});
const sms = rt.breaker('sms', { ...FLEET_TEST_OPTIONS, scope: scope as 'fleet' | 'process' });
rt.bus.subscribe('breaker.sms.opened', () => {
  process.stdout.write(`OPENED ${Date.now()}\n`);
});
await rt.start();
while (scope === 'fleet' && sms.stats.fleet !== 'joined') await new Promise((r) => setTimeout(r, 10));
process.stdout.write('READY\n');
const until = Date.now() + Number(runMs);
let started = 0;
while (Date.now() < until) {
  try {
    await sms.call(async (signal) => {
      started++;
      await fetch(`${provider}/send`, { method: 'POST', signal });
    });
  } catch (error) {
    if (error instanceof CircuitOpenError) await new Promise((r) => setTimeout(r, 10));
  }
}
process.stdout.write(`DONE ${started}\n`);
await rt.stop();
process.exit(0);
