import { pathToFileURL } from 'node:url';
import type { Runtime } from '../runtime/createRuntime.js';
import { watchNewRuntimes } from '../runtime/createRuntime.js';
import { consoleLog, type DemoLog } from './demoLog.js';
import { demo as busDemo } from './scenarios/bus.js';
import { demo as checkoutDemo } from './scenarios/checkout.js';
import { demo as profileSyncDemo } from './scenarios/profile-sync.js';
import { demo as smsDemo } from './scenarios/sms.js';
import { logStateChanges } from './stateLog.js';

/** The scenarios `npm start` runs, in order. They live in `scenarios/` so the packaged CLI ships them; each is also runnable alone from `examples/`. */
export const scenarios: Array<{ name: string; run: (log: DemoLog) => Promise<void> }> = [
  { name: 'event bus', run: busDemo },
  { name: 'circuit breaker: SMS provider outage', run: smsDemo },
  { name: 'task queue: profile sync to B, C, D while C is down and flapping', run: profileSyncDemo },
  {
    name: 'saga: checkout across orders, inventory and payments (a declined card is undone in reverse)',
    run: checkoutDemo,
  },
];

/** Options of `runDemo`. */
export interface DemoOptions {
  /** Print every state change of the pattern actors in the timeline (default true). */
  states?: boolean;
  /** Called with each runtime a scenario creates, with the scenario's name (the viewer uses it). */
  onRuntime?: (rt: Runtime<any>, scenario: string) => void;
}

/**
 * Runs every scenario on the embedded default store: a timeline of what
 * happens and of the machines' state changes, then a summary. The scenarios
 * create their own runtimes; the demo sees them through `watchNewRuntimes`.
 */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const log = consoleLog();
  let scenario = '';
  const stop = watchNewRuntimes((rt) => {
    if (options.states !== false) logStateChanges(rt, log);
    options.onRuntime?.(rt, scenario);
  });
  try {
    for (const s of scenarios) {
      scenario = s.name;
      log.section(s.name);
      await s.run(log);
    }
  } finally {
    stop();
  }
  console.log('\n== summary');
  for (const line of log.summaries) console.log(`- ${line}`);
}

// `npm start` runs this file directly; `keel demo` imports it.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runDemo();
}
