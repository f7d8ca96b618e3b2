import { layoutCatalog } from '../diagram/catalog.js';
import { createViewer } from '../viewer/attach.js';
import { parseCommand, portOf } from './args.js';
import { runDemo } from './demo.js';
import type { Io } from './io.js';

export const DEFAULT_PORT = 4400;
/** Rounds of the demo the viewer keeps (one runtime per scenario): the current round and the one before. */
const KEPT_RUNTIMES = 8;
/** The pause between two rounds of the demo. */
const BETWEEN_ROUNDS_MS = 1_500;

export const inspectHelp = `usage: keel inspect [--port <n>] [--no-wait] [--exit]

Serves the live viewer on http://127.0.0.1:<port>/ and runs the demo in it,
round after round until Ctrl-C (SIGINT) or SIGTERM: every actor of each
scenario's runtime, its diagram with the current state highlighted, and its
recent events, updated live. The page is served by keel itself and needs no
internet. A stop lets the scenario that is running finish, then exits.

The demo starts once the page is open, so you see it from the first event.

To watch your own application instead: createRuntime({ viewer: { port: ${DEFAULT_PORT} } }).

options:
  --port <n>   port on 127.0.0.1 (default ${DEFAULT_PORT}; 0 picks a free one)
  --no-wait    start the demo at once instead of waiting for the page
  --exit       run the demo once, then exit
  -h, --help   this help
`;

/** Resolves after `ms`, or as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** `keel inspect`: the live viewer on localhost, with the demo running in it until stopped. */
export async function inspectCommand(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const args = parseCommand('keel inspect', argv, { options: ['port'], flags: ['no-wait', 'exit'] });
  if (args.help) {
    io.out(inspectHelp);
    return 0;
  }
  const port = portOf('keel inspect', args.values.port, DEFAULT_PORT);
  const viewer = createViewer({ port, runtimes: KEPT_RUNTIMES });
  let url: string;
  try {
    url = await viewer.listen();
  } catch (error) {
    const code = (error as { code?: string }).code;
    io.err(
      code === 'EADDRINUSE'
        ? `keel inspect: port ${port} is in use; choose another with --port\n`
        : `keel inspect: cannot serve the viewer: ${(error as Error).message}\n`,
    );
    return 1;
  }
  io.out(`keel live viewer: ${url}\n`);
  const stopping = new AbortController();
  // After the first signal the handlers are gone, so a second Ctrl-C ends the process at once.
  const stop = () => {
    io.out('\nstopping: the scenario that is running finishes first (Ctrl-C again to quit now)\n');
    unlisten();
    stopping.abort();
  };
  const unlisten = () => {
    signals.off('SIGINT', stop);
    signals.off('SIGTERM', stop);
  };
  signals.on('SIGINT', stop);
  signals.on('SIGTERM', stop);
  try {
    // Before the first scenario, so the page draws each machine from its first state on.
    const laidOut = layoutCatalog();
    if (args.values['no-wait'] !== true) {
      io.out('open it in a browser: the demo starts when the page is connected\n');
      await Promise.race([viewer.firstClient(), pause(2 ** 31 - 1, stopping.signal)]);
    }
    await laidOut;
    for (let round = 1; !stopping.signal.aborted; round++) {
      if (round > 1) io.out(`\n-- round ${round} of the demo (Ctrl-C stops it)\n`);
      await runDemo({ signal: stopping.signal, onRuntime: (rt, scenario) => viewer.watch(rt, scenario) });
      if (args.values.exit === true) break;
      await pause(BETWEEN_ROUNDS_MS, stopping.signal);
    }
    io.out('keel inspect: stopped\n');
    return 0;
  } finally {
    unlisten();
    await viewer.close();
  }
}
