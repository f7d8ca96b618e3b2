import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runScript } from '../fixtures/script.js';

describe('telemetry handles', () => {
  it('a script with a metrics port, a viewer /metrics, kept-alive scrapes and an SDK exits by itself after rt.stop()', async () => {
    const script = fileURLToPath(new URL('./exitsAfterStop.ts', import.meta.url));
    const started = Date.now();
    // Killed (code null) if it has not exited by itself within 15 s.
    const { code, out } = await runScript(script, [], 15_000);
    expect(out).toContain('stopped');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
