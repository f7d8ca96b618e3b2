/** How a timeline line reads: a failure (an outage, a refusal, an undo) is printed in red. */
export type Tone = 'failure';

/** Where a scenario tells the demo what happens: one readable line per event. */
export interface DemoLog {
  /** A section heading. */
  section(title: string): void;
  /** One line of the timeline, tagged with who says it. */
  line(who: string, text: string, tone?: Tone): void;
  /** A closing fact for the summary at the end. */
  summary(text: string): void;
}

/**
 * Whether to print colours: `FORCE_COLOR` decides when set (`0` or `false`
 * turn them off), else `NO_COLOR` turns them off, else only a terminal gets
 * them, so piped output and test runs stay plain text.
 */
export function colourWanted(env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY === true): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY;
}

/** Wide enough for `saga.checkout.checkout-1`, so the timeline's text starts in one column. */
const WHO = 26;
const CODES = { bold: 1, dim: 2, red: 31, cyan: 36 } as const;

/** Options of `consoleLog`. */
export interface ConsoleLogOptions {
  /** Default `colourWanted()`. */
  colour?: boolean;
  /** Default `console.log`. */
  print?: (line: string) => void;
}

/** A log that prints to stdout, with colours on a terminal (failures in red). */
export function consoleLog(options: ConsoleLogOptions = {}): DemoLog & { summaries: string[] } {
  const colour = options.colour ?? colourWanted();
  const print = options.print ?? ((line: string) => console.log(line));
  const paint = (code: keyof typeof CODES, s: string) => (colour ? `\x1b[${CODES[code]}m${s}\x1b[0m` : s);
  const start = Date.now();
  const summaries: string[] = [];
  return {
    summaries,
    section(title) {
      print(`\n${paint('bold', `== ${title}`)}`);
    },
    line(who, text, tone) {
      const t = `${((Date.now() - start) / 1000).toFixed(2)}s`.padStart(7);
      print(`${paint('dim', t)} ${paint('cyan', who.padEnd(WHO))} ${tone === 'failure' ? paint('red', text) : text}`);
    },
    summary(text) {
      summaries.push(text);
    },
  };
}
