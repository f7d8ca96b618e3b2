// Runs the webhook checkout saga scenario (parallel reserve-and-authorise, then the payment webhook with a timeout):
// `npx tsx examples/checkout.ts`. The code lives in src/cli/scenarios/ so the packaged `keel demo` ships it; this file
// keeps the example's path for readers and tests.
import { pathToFileURL } from 'node:url';
import { consoleLog } from '../src/cli/demoLog.js';
import { demo } from '../src/cli/scenarios/checkout.js';

export * from '../src/cli/scenarios/checkout.js';

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const log = consoleLog();
  await demo(log);
  for (const line of log.summaries) console.log(`- ${line}`);
}
