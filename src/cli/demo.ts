import { demo as busDemo } from '../../examples/bus.js';
import { demo as checkoutDemo } from '../../examples/checkout.js';
import { demo as profileSyncDemo } from '../../examples/profile-sync.js';
import { demo as smsDemo } from '../../examples/sms.js';
import { consoleLog, type DemoLog } from './demoLog.js';

/** The scenarios `npm start` runs, in order. Each is also runnable alone from `examples/`. */
const scenarios: Array<{ name: string; run: (log: DemoLog) => Promise<void> }> = [
  { name: 'event bus', run: busDemo },
  { name: 'circuit breaker: SMS provider outage', run: smsDemo },
  { name: 'task queue: profile sync to B, C, D while C is down and flapping', run: profileSyncDemo },
  {
    name: 'saga: checkout across orders, inventory and payments (a declined card is undone in reverse)',
    run: checkoutDemo,
  },
];

/** Runs every scenario on the embedded default store and prints a summary. */
export async function runDemo(): Promise<void> {
  const log = consoleLog();
  for (const s of scenarios) {
    log.section(s.name);
    await s.run(log);
  }
  console.log('\n== summary');
  for (const line of log.summaries) console.log(`- ${line}`);
}

await runDemo();
