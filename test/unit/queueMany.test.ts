import { afterEach, describe, expect, it } from 'vitest';
import { IDLE_POLLS_PER_PERIOD } from '../../src/actors/queue/idlePoller.js';
import { createRuntime, memoryStore, type Runtime } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';
import { faultyStore } from '../fixtures/fakeStore.js';
import { sharedStoreKinds } from '../fixtures/sharedStores.js';
import { sleep } from '../fixtures/wait.js';

/** Issue #12, point 17: thousands of queues (one per tenant) are cheap to create, keep idle and stop. */

const N = 1000;
const POLL_MS = 1000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Store calls made in `fn`, per method. */
async function callsDuring(calls: Record<string, number>, fn: () => Promise<void>): Promise<Record<string, number>> {
  const before = { ...calls };
  await fn();
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(calls)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

for (const kind of sharedStoreKinds()) {
  describe.skipIf(!kind.available)(`${N} idle queues (${kind.name})`, () => {
    it(`make at most ${IDLE_POLLS_PER_PERIOD} store calls per poll interval, and still find work made elsewhere`, {
      timeout: 60_000,
    }, async () => {
      const { make, cleanup } = kind.fresh();
      cleanups.push(cleanup);
      const clock = new TestClock(Date.now());
      const inner = make();
      const { store, calls } = faultyStore(inner, () => undefined);
      const rt: Runtime = createRuntime({ store, clock, onError: () => {} });
      cleanups.push(async () => {
        const stopped = rt.stop();
        await clock.advance(60_000);
        await stopped;
      });
      const ran: string[] = [];
      for (let i = 0; i < N; i++) {
        rt.queue(`tenant-${i}`, { pollMs: POLL_MS, handler: (t) => void ran.push(`${i}:${String(t.payload)}`) });
      }
      await rt.start();
      await settle(20);
      // Counted over three periods together: on a loaded machine a durable store's answer can land in the next one.
      const made = await callsDuring(calls, async () => {
        for (let period = 0; period < 3; period++) await clock.advance(POLL_MS);
      });
      expect(total(made), JSON.stringify(made)).toBeLessThanOrEqual(3 * IDLE_POLLS_PER_PERIOD);
      // Work another process wrote (straight into the store, so no queue here was told): found by the rationed poll.
      const other = kind.name === 'memory' ? inner : make();
      if (other !== inner) await other.open();
      await other.enqueue('tenant-7', [{ payload: '"x"', runAt: clock.now() }], clock.now());
      // Each queue is looked at about every N / IDLE_POLLS_PER_PERIOD periods (more when real I/O delays a tick).
      for (let i = 0; i < 3 * Math.ceil(N / IDLE_POLLS_PER_PERIOD) && ran.length === 0; i++) {
        await clock.advance(POLL_MS);
        // Durable stores answer in real time.
        if (kind.name !== 'memory') await sleep(30);
      }
      expect(ran).toEqual(['7:x']);
      if (other !== inner) await other.close();
    });
  });
}

describe('many queues in one runtime', () => {
  it('are registered in the actor system, but not as children of the root (copied on every spawn)', async () => {
    const rt = createRuntime({ store: memoryStore(), clock: new TestClock(0) });
    const queues = Array.from({ length: 50 }, (_, i) => rt.queue(`q${i}`, { handler: () => {} }));
    expect(rt.system.system.get('queue.q7')).toBe(queues[7]!.actor);
    expect(Object.keys(rt.system.getSnapshot().children).filter((k) => k.startsWith('queue.'))).toEqual([]);
    await rt.start();
    await rt.stop();
    // Stopped with the runtime: done and gone from the system.
    expect(queues[7]!.actor.getSnapshot().status).toBe('done');
    expect(rt.system.system.get('queue.q7')).toBeUndefined();
  });
});
