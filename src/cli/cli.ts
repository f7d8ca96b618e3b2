import { catalog } from '../diagram/catalog.js';
import { parseCommand, UsageError } from './args.js';
import { consoleCommand } from './console.js';
import { runDemo } from './demo.js';
import { diagramCommand } from './diagram.js';
import { inspectCommand } from './inspect.js';
import type { Io } from './io.js';

export const mainHelp = `keel: resilience patterns as live, visible state machines

usage: keel <command> [options]

commands:
  demo                 run the four scenarios: a live timeline of what happens and of
                       every state change, then a summary (what \`npm start\` runs)
  diagram <machine>    print a machine as a Mermaid state diagram
                       (${catalog.map((e) => e.name).join(', ')})
  inspect              serve the live viewer on localhost and run the demo in it
  console              serve the console of a fleet sharing a Postgres schema
                       (keel console --postgres <url> --schema <s>)

options:
  -h, --help           help (also after a command: keel diagram --help)
`;

export const demoHelp = `usage: keel demo [--no-states]

Runs the four scenarios on the embedded default store (event bus, circuit
breaker, task queue, saga), each with its own runtime: a timeline of what
happens and of every state change of the breakers, queues and sagas (colours on
a terminal), then a summary. To watch it in a browser: keel inspect.

options:
  --no-states  leave the machines' state changes out of the timeline
  -h, --help   this help
`;

type Command = (argv: string[], io: Io) => number | Promise<number>;

/** `keel demo`: the four scenarios in the terminal. */
async function demoCommand(argv: string[], io: Io): Promise<number> {
  const args = parseCommand('keel demo', argv, { flags: ['no-states'] });
  if (args.help) {
    io.out(demoHelp);
    return 0;
  }
  await runDemo({ states: args.values['no-states'] !== true });
  return 0;
}

// A Map, not an object literal: `keel constructor` or `keel __proto__` must not find Object.prototype's members.
const commands = new Map<string, Command>([
  ['demo', demoCommand],
  ['diagram', diagramCommand],
  ['inspect', inspectCommand],
  ['console', consoleCommand],
]);

/** Runs the `keel` command line; resolves with the exit code (2 for a usage mistake). */
export async function runCli(argv: string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === undefined) {
      io.err(mainHelp);
      return 2;
    }
    if (first === '-h' || first === '--help' || first === 'help') {
      io.out(mainHelp);
      return 0;
    }
    if (first.startsWith('-')) throw new UsageError(`keel: unknown option '${first}'`);
    const command = commands.get(first);
    if (!command) {
      throw new UsageError(`keel: unknown command '${first}' (commands: ${[...commands.keys()].join(', ')})`);
    }
    return await command(rest, io);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const command = error.message.split(':')[0] as string;
    io.err(`${error.message}\nsee '${command} --help'\n`);
    return 2;
  }
}
