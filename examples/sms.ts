// Runs the circuit breaker scenario (an SMS provider outage): `npx tsx examples/sms.ts`. The code lives in src/cli/scenarios/ so the
// packaged `keel demo` ships it; this file keeps the example's path for readers and tests.
import { pathToFileURL } from 'node:url';
import { consoleLog } from '../src/cli/demoLog.js';
import { demo } from '../src/cli/scenarios/sms.js';

export * from '../src/cli/scenarios/sms.js';

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await demo(consoleLog());
}
