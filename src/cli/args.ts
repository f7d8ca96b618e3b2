import { parseArgs } from 'node:util';

/** A mistake on the command line: the CLI prints it with a pointer to `--help` and exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** What a command accepts: flags (boolean) and options (with a value). */
export interface CommandSpec {
  flags?: string[];
  options?: string[];
  /** Most positional arguments allowed. */
  positionals?: number;
}

/** Parsed arguments; `help` is true when `-h`/`--help` was given. */
export interface ParsedArgs {
  help: boolean;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses `argv` strictly against `spec`: an unknown flag or a missing value is a `UsageError`. */
export function parseCommand(command: string, argv: string[], spec: CommandSpec): ParsedArgs {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of spec.flags ?? []) options[f] = { type: 'boolean' };
  for (const o of spec.options ?? []) options[o] = { type: 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(`${command}: ${describe(error)}`);
  }
  const { help, ...values } = parsed.values as Record<string, string | boolean | undefined>;
  if (help !== true && parsed.positionals.length > (spec.positionals ?? 0)) {
    throw new UsageError(`${command}: unexpected argument '${parsed.positionals[spec.positionals ?? 0]}'`);
  }
  return { help: help === true, values, positionals: parsed.positionals };
}

// Node's messages explain the `--` escape at length; one short sentence is enough on a terminal.
function describe(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const option = /'(-[^' ]*)/.exec(e.message ?? '')?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option '${option}'`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
    return `option '${option}' ${/argument missing/.test(e.message ?? '') ? 'needs a value' : 'takes no value'}`;
  return e.message ?? String(error);
}

/** A port number from an option value, or a `UsageError`. */
export function portOf(command: string, value: string | boolean | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || port > 65535) {
    throw new UsageError(`${command}: --port must be a number from 0 to 65535, got '${String(value)}'`);
  }
  return port;
}
