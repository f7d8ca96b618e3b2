import { describe, expect, it } from 'vitest';

describe('package entry points', () => {
  it("'keel' and 'keel/testing' resolve through package.json exports", async () => {
    const keel = await import('keel');
    const testing = await import('keel/testing');
    for (const name of [
      'createRuntime',
      'memoryStore',
      'sqliteStore',
      'CircuitOpenError',
      'CallTimeoutError',
      'KeelError',
    ]) {
      expect(keel, name).toHaveProperty(name);
    }
    for (const name of ['planPaths', 'replayPath', 'eventKind', 'TestClock'])
      expect(testing, name).toHaveProperty(name);
  });
});
