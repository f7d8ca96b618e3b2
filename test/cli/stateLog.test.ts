import { describe, expect, it } from 'vitest';
import { logStateChanges } from '../../src/cli/stateLog.js';
import { createRuntime } from '../../src/index.js';

describe('the demo timeline of state changes', () => {
  it('prints each change of a pattern actor once, and nothing of the plumbing', async () => {
    const lines: string[] = [];
    const log = {
      section: () => {},
      summary: () => {},
      line: (who: string, text: string) => lines.push(`${who}: ${text}`),
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
      'breaker.sms: closed → open',
      'breaker.sms: open → closed',
    ]);
  });
});
