import { describe, expect, it } from 'vitest';
import { isFailureState, logStateChanges } from '../../src/cli/stateLog.js';
import { createRuntime } from '../../src/index.js';

describe('the demo timeline of state changes', () => {
  it('prints each change of a pattern actor once, and nothing of the plumbing', async () => {
    const lines: string[] = [];
    const log = {
      section: () => {},
      summary: () => {},
      line: (who: string, text: string, tone?: string) => lines.push(`${who}: ${text}${tone ? ` (${tone})` : ''}`),
    };
    const rt = createRuntime();
    logStateChanges(rt, log);
    const sms = rt.breaker('sms', { failureThreshold: 1 });
    await rt.start();
    await sms.call(async () => Promise.reject(new Error('down'))).catch(() => {});
    sms.reset();
    sms.reset(); // already closed: no change, no line
    await rt.stop();
    expect(lines).toEqual([
      'breaker.sms: starts in closed',
      'breaker.sms: closed → open (failure)',
      'breaker.sms: open → closed',
    ]);
  });

  it('marks entering an open circuit, an undo, a failed saga or a dead task as a failure', () => {
    expect(isFailureState(['open'])).toBe(true);
    expect(isFailureState(['compensating.deductInventory'])).toBe(true);
    expect(isFailureState(['compensated'])).toBe(true);
    expect(isFailureState(['dead'])).toBe(true);
    expect(isFailureState(['halfOpen'])).toBe(false);
    expect(isFailureState(['running.working'])).toBe(false);
    expect(isFailureState(['completed'])).toBe(false);
  });
});
