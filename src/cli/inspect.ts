import { createViewer } from '../viewer/attach.js';
import { parseCommand, portOf } from './args.js';
import { runDemo } from './demo.js';
import type { Io } from './io.js';

export const DEFAULT_PORT = 4400;

export const inspectHelp = `usage: keel inspect [--port <n>] [--no-wait] [--exit]

Serves the live viewer on http://127.0.0.1:<port>/ and runs the demo in it:
every actor of each scenario's runtime, its diagram with the current state
highlighted, and its recent events, updated live. The page is served by keel
itself and needs no internet.

The demo starts once the page is open, so you see it from the first event;
afterwards the viewer keeps serving until Ctrl-C.

To watch your own application instead: createRuntime({ viewer: { port: ${DEFAULT_PORT} } }).

options:
  --port <n>   port on 127.0.0.1 (default ${DEFAULT_PORT}; 0 picks a free one)
  --no-wait    start the demo at once instead of waiting for the page
  --exit       exit when the demo is over instead of serving on
  -h, --help   this help
`;

/** `keel inspect`: the live viewer on localhost, with the demo running in it. */
export async function inspectCommand(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const args = parseCommand('keel inspect', argv, { options: ['port'], flags: ['no-wait', 'exit'] });
  if (args.help) {
    io.out(inspectHelp);
    return 0;
  }
  const port = portOf('keel inspect', args.values.port, DEFAULT_PORT);
  const viewer = createViewer({ port });
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
  try {
    if (args.values['no-wait'] !== true) {
      io.out('open it in a browser: the demo starts when the page is connected\n');
      await viewer.firstClient();
    }
    await runDemo({ onRuntime: (rt, scenario) => viewer.watch(rt, scenario) });
    if (args.values.exit === true) return 0;
    io.out(`\nthe demo is over; the viewer keeps serving on ${url} until Ctrl-C\n`);
    await new Promise<void>((resolve) => {
      signals.once('SIGINT', () => resolve());
      signals.once('SIGTERM', () => resolve());
    });
    return 0;
  } finally {
    await viewer.close();
  }
}
