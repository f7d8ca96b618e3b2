/** Where a scenario tells the demo what happens: one readable line per event. */
export interface DemoLog {
  /** A section heading. */
  section(title: string): void;
  /** One line of the timeline, tagged with who says it. */
  line(who: string, text: string): void;
  /** A closing fact for the summary at the end. */
  summary(text: string): void;
}

const tty = process.stdout.isTTY === true;
const paint = (code: number, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);

/** A log that prints to stdout, with colours on a terminal. */
export function consoleLog(): DemoLog & { summaries: string[] } {
  const start = Date.now();
  const summaries: string[] = [];
  return {
    summaries,
    section(title) {
      console.log(`\n${paint(1, `== ${title}`)}`);
    },
    line(who, text) {
      const t = `${((Date.now() - start) / 1000).toFixed(2)}s`.padStart(7);
      console.log(`${paint(2, t)} ${paint(36, who.padEnd(18))} ${text}`);
    },
    summary(text) {
      summaries.push(text);
    },
  };
}
