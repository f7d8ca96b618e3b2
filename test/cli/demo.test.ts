import { afterEach, describe, expect, it, vi } from 'vitest';
import { cli } from './run.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('keel demo', () => {
  it('runs the four scenarios with a timeline of state changes and a summary', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
    const r = await cli('demo');
    expect(r.code).toBe(0);
    const text = lines.join('\n');
    for (const section of ['== event bus', '== circuit breaker', '== task queue', '== saga']) {
      expect(text).toContain(section);
    }
    // The machines' own state changes, read from inspection, next to what the scenarios say.
    expect(text).toMatch(/breaker\.sms\s+closed → open/);
    expect(text).toMatch(/queue\.sync-B\s+idle → running\.working/);
    expect(text).toMatch(/saga\.checkout\.checkout-2\s+running\.processPayment → compensating\.deductInventory/);
    const summary = text.slice(text.indexOf('== summary'));
    expect(summary.split('\n').filter((l) => l.startsWith('- '))).toHaveLength(4);
  });

  it('--no-states leaves the state changes out', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
    expect((await cli('demo', '--no-states')).code).toBe(0);
    expect(lines.join('\n')).not.toContain('→ open');
  });
});
