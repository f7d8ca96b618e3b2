import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, memoryStore, type Runtime } from '../../src/index.js';
import { Gauge } from '../fixtures/gauge.js';

/**
 * A claim cut short by a limit while the queue holds tasks: their settles
 * claim again, so the queue does not ask the store when work falls due after
 * every such claim (one more round trip per claim through a limited drain;
 * on Postgres that query reads the whole lease index).
 */
describe('a limited queue claims again on settle, without a due-time look per claim', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  it('globalConcurrency: the drain asks nextDueAt for a small fraction of its claims, and never exceeds the limit', async () => {
    const store = memoryStore();
    let claims = 0;
    let dueLooks = 0;
    const claim = store.claim.bind(store);
    store.claim = (queue, request) => {
      claims++;
      return claim(queue, request);
    };
    const nextDueAt = store.nextDueAt.bind(store);
    store.nextDueAt = (queue) => {
      dueLooks++;
      return nextDueAt(queue);
    };
    rt = createRuntime({ store });
    const inFlight = new Gauge();
    let done = 0;
    const q = rt.queue('gc', {
      concurrency: 8,
      globalConcurrency: 3,
      handler: async () => {
        inFlight.enter();
        await new Promise((r) => setTimeout(r, 1));
        inFlight.leave();
        done++;
      },
    });
    await rt.start();
    await Promise.all(Array.from({ length: 300 }, (_, i) => q.enqueue(i)));
    await q.drain();
    expect(done).toBe(300);
    expect(inFlight.most).toBeLessThanOrEqual(3);
    // Every claim is cut short by the limit (8 workers, 3 slots).
    expect(claims).toBeGreaterThanOrEqual(100);
    expect(dueLooks).toBeLessThan(claims / 4);
  });
});
