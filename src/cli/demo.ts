import { pathToFileURL } from 'node:url';
import type { Runtime } from '../runtime/createRuntime.js';
import { watchNewRuntimes } from '../runtime/createRuntime.js';
import { consoleLog, type DemoLog } from './demoLog.js';
import { demo as busDemo } from './scenarios/bus.js';
import { demo as checkoutDemo } from './scenarios/checkout.js';
import { demo as profileSyncDemo } from './scenarios/profile-sync.js';
import { demo as smsDemo } from './scenarios/sms.js';
import { logStateChanges } from './stateLog.js';

/** One scenario of the demo. */
export interface Scenario {
  name: string;
  run: (log: DemoLog) => Promise<void>;
  /**
   * Who, in this scenario's lines, only retells a state change (`breaker: opened`, read from the bus so the
   * scenario tells its story when run alone): with the state timeline on, the demo leaves those lines out,
   * so each change is told once.
   */
  echoes?: string[];
}

/** The scenarios `npm start` runs, in order. They live in `scenarios/` so the packaged CLI ships them; each is also runnable alone from `examples/`. */
export const scenarios: Scenario[] = [
  { name: 'event bus', run: busDemo },
  { name: 'circuit breaker: SMS provider outage', run: smsDemo, echoes: ['breaker'] },
  {
    name: 'task queue: profile sync to B, C, D while C is down and flapping',
    run: profileSyncDemo,
    echoes: ['breaker'],
  },
  {
    name: 'saga: checkout across orders, inventory and payments (stock and card at once, then the payment webhook)',
    run: checkoutDemo,
    echoes: ['saga'],
  },
];

/** Options of `runDemo`. */
export interface DemoOptions {
  /** Print every state change of the pattern actors in the timeline (default true). */
  states?: boolean;
  /** Called with each runtime a scenario creates, with the scenario's name (the viewer uses it). */
  onRuntime?: (rt: Runtime<any>, scenario: string) => void;
  /** Stops the demo before its next scenario (the one running finishes: its servers and runtime close cleanly). */
  signal?: AbortSignal;
}

/**
 * Runs every scenario on the embedded default store: a timeline of what
 * happens and of the machines' state changes, then a summary. The scenarios
 * create their own runtimes; the demo sees them through `watchNewRuntimes`.
 */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const log = consoleLog();
  const states = options.states !== false;
  let scenario: Scenario | undefined;
  const stop = watchNewRuntimes((rt) => {
    if (states) logStateChanges(rt, log);
    options.onRuntime?.(rt, scenario?.name ?? '');
  });
  const told: DemoLog = {
    section: (title) => log.section(title),
    summary: (text) => log.summary(text),
    line: (who, text, tone) => {
      if (states && scenario?.echoes?.includes(who)) return;
      log.line(who, text, tone);
    },
  };
  try {
    for (const s of scenarios) {
      if (options.signal?.aborted) break;
      scenario = s;
      log.section(s.name);
      await s.run(told);
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
