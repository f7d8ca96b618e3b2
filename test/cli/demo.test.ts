import { afterEach, describe, expect, it, vi } from 'vitest';
import { colourWanted, consoleLog } from '../../src/cli/demoLog.js';
import { cli } from './run.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs `keel demo` with these arguments and returns what it printed, without the elapsed-time column. */
async function demo(...args: string[]): Promise<string[]> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const r = await cli('demo', ...args);
  expect(r.code).toBe(0);
  return lines.flatMap((l) => l.split('\n')).map((l) => l.replace(/^ *\d+\.\d\ds /, ''));
}

const section = (lines: string[], title: string) => {
  const start = lines.findIndex((l) => l.startsWith(`== ${title}`));
  const end = lines.findIndex((l, i) => i > start && l.startsWith('== '));
  return lines.slice(start, end);
};

describe('keel demo', () => {
  it('runs the four scenarios with a timeline that tells each state change once, and a summary', async () => {
    const lines = await demo();
    const text = lines.join('\n');
    for (const section of ['== event bus', '== circuit breaker', '== task queue', '== saga']) {
      expect(text).toContain(section);
    }
    // The machines' own state changes, read from inspection, next to what the scenarios say.
    expect(text).toMatch(/breaker\.sms\s+closed → open/);
    expect(text).toMatch(/queue\.bus:sync-B\s+idle → running\.working/);
    // The webhook checkout: the parallel step, the webhook's signal, a declined card, a webhook that never came.
    expect(text).toMatch(
      /saga\.checkout\.checkout-1\s+running\.createOrder → running\.reserveAndAuthorise\.deductInventory\.run, running\.reserveAndAuthorise\.processPayment\.run/,
    );
    expect(text).toMatch(/webhook\s+payment\.confirmed pay-1 for checkout-1/);
    expect(text).toMatch(/saga\.checkout\.checkout-1\s+running\.paymentConfirmed → completed/);
    expect(text).toMatch(
      /saga\.checkout\.checkout-2\s+running\.reserveAndAuthorise\.[^\n]* → compensating\.processPayment/,
    );
    expect(text).toMatch(/saga\.checkout\.checkout-3\s+running\.paymentConfirmed → compensating\.processPayment/);
    // Why a saga is undone is told once, next to the change.
    expect(text).toMatch(/checkout\s+checkout-2: processPayment failed \(payments: card declined\)/);
    expect(text).toMatch(
      /checkout\s+checkout-3: paymentConfirmed failed \(.*waited 300 ms for the signal 'payment\.confirmed'/,
    );
    const summary = text.slice(text.indexOf('== summary'));
    expect(summary.split('\n').filter((l) => l.startsWith('- '))).toHaveLength(4);
    expect(summary).toMatch(/- checkout: 1 completed after the payment webhook, 2 compensated .*stock 3 \+ 2 held = 5/);
    // No colour codes when stdout is not a terminal and FORCE_COLOR is not set.
    expect(text).not.toContain('\x1b[');
    // No scenario line retells what the state timeline says.
    const breaker = section(lines, 'circuit breaker');
    // (The fleet case's summary counts calls per open period: a count, not a state change.)
    expect(breaker.filter((l) => /open/.test(l) && !/→|while open|open periods/.test(l))).toEqual([]);
    // The single-process breaker opens once; the fleet case (with Postgres) follows it, its three runtimes' breaker
    // told as one: no change is printed twice in a row.
    const fleetAt = breaker.findIndex((l) => l.startsWith('fleet '));
    const single = fleetAt === -1 ? breaker : breaker.slice(0, fleetAt);
    expect(single.filter((l) => l.startsWith('breaker.sms ') && l.includes('closed → open'))).toHaveLength(1);
    const changes = breaker.filter((l) => l.startsWith('breaker.sms ')).map((l) => l.replace(/\s+/g, ' '));
    expect(changes.filter((l, i) => i > 0 && l === changes[i - 1])).toEqual([]);
    const queue = section(lines, 'task queue');
    expect(queue.filter((l) => l.startsWith('breaker '))).toEqual([]);
    expect(queue.filter((l) => /^breaker\.svc-C +closed → open/.test(l)).length).toBeGreaterThan(0);
    const saga = section(lines, 'saga');
    expect(saga.filter((l) => l.startsWith('saga '))).toEqual([]);
  });

  it('--no-states leaves the state changes out, and the scenarios tell them instead', async () => {
    const lines = await demo('--no-states');
    const text = lines.join('\n');
    expect(text).not.toContain('→ open');
    expect(section(lines, 'circuit breaker').some((l) => /^breaker +opened/.test(l))).toBe(true);
    expect(section(lines, 'saga').some((l) => /^saga +checkout-1 completed/.test(l))).toBe(true);
  });

  it('prints the same numbers on every run (outages are counted in requests and seeded, not timed)', async () => {
    const own = (lines: string[]) => [
      ...lines.filter((l) => /^- (bus|profile sync|checkout):/.test(l)),
      ...lines.filter((l) => /^service [BCD] +converged/.test(l)).sort(),
    ];
    const first = own(await demo('--no-states'));
    vi.restoreAllMocks();
    const second = own(await demo('--no-states'));
    expect(first.length).toBe(6);
    expect(second).toEqual(first);
  });
});

describe('the demo log', () => {
  it('colours only a terminal, or when FORCE_COLOR asks', () => {
    expect(colourWanted({}, false)).toBe(false);
    expect(colourWanted({}, true)).toBe(true);
    expect(colourWanted({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colourWanted({ FORCE_COLOR: '1' }, false)).toBe(true);
    expect(colourWanted({ FORCE_COLOR: '0' }, true)).toBe(false);
    expect(colourWanted({ FORCE_COLOR: 'false' }, true)).toBe(false);
  });

  it('prints a failure in red and anything else in the default colour', () => {
    const printed: string[] = [];
    const log = consoleLog({ colour: true, print: (l) => printed.push(l) });
    log.line('breaker.sms', 'closed → open', 'failure');
    log.line('breaker.sms', 'open → halfOpen');
    expect(printed[0]).toContain('\x1b[31mclosed → open\x1b[0m');
    expect(printed[1]).toMatch(/ open → halfOpen$/);
    const plain: string[] = [];
    consoleLog({ colour: false, print: (l) => plain.push(l) }).line('x', 'failed', 'failure');
    expect(plain[0]).not.toContain('\x1b[');
  });
});
