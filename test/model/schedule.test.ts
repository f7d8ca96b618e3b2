import { afterAll, describe, expect, it } from 'vitest';
import type { AnyMachineSnapshot } from 'xstate';
import { createRuntime, KeelError, memoryStore, type Schedules, type Store } from '../../src/index.js';
import { scheduleMachine } from '../../src/machines/schedule.js';
import { type Driver, planPaths, replayPath, settle, TestClock } from '../../src/testing/index.js';
import { firedEvents } from '../fixtures/scheduleKit.js';

const T0 = Date.UTC(2026, 0, 1);
const EVERY = 1000;
const plan = planPaths(scheduleMachine, {
  input: { name: 'tick', retryMs: 1000 },
  events: [
    { type: 'schedule.start', nextAt: T0 + EVERY, delayMs: EVERY },
    { type: 'schedule.stop' },
    { type: 'schedule.remove' },
    { type: 'xstate.after.untilDue.schedule.waiting' },
    { type: 'xstate.done.actor.fire', output: { gone: false, nextAt: T0 + 2 * EVERY, delayMs: EVERY } },
    { type: 'xstate.done.actor.fire', output: { gone: true } },
    { type: 'xstate.error.actor.fire', error: new Error('store down') },
  ] as never,
  // Slots only grow: the context's times stay out of the key, so the graph is finite.
  serializeState: (s: AnyMachineSnapshot) => JSON.stringify(s.value),
});

afterAll(() => {
  console.log(plan.coverage.format('schedule'));
});

/** A memory store whose `readSchedule` (the first read of a fire) waits at a gate the driver opens or fails. */
function gatedStore() {
  const inner = memoryStore() as Store & Schedules;
  let gate: { open: () => void; fail: (e: unknown) => void } | undefined;
  const store: Store & Schedules = {
    ...inner,
    readSchedule: (name) =>
      new Promise((resolve, reject) => {
        gate = {
          open: () => resolve(inner.readSchedule(name)),
          fail: (e) => reject(e),
        };
      }),
  };
  const take = () => {
    const g = gate;
    gate = undefined;
    return g;
  };
  return { store, inner, take };
}

describe('schedule machine, from its graph', () => {
  it('covers every state and transition', () => {
    expect(plan.coverage.complete, plan.coverage.format('schedule')).toBe(true);
  });

  it.each(plan.paths.map((p) => [p.description, p]))('%s', async (_name, path) => {
    const clock = new TestClock(T0);
    const { store, inner, take } = gatedStore();
    const errors: unknown[] = [];
    const rt = createRuntime({ store, clock, onError: (e) => errors.push(e) });
    const fired = firedEvents(rt, 'tick');
    const s = rt.schedule('tick', { everyMs: EVERY, queue: 'jobs' });
    let expectFired = 0;
    let expectErrors = 0;
    let stopping: Promise<void> | undefined;
    let removing: Promise<void> | undefined;
    const until = async (value: string) => {
      for (let i = 0; i < 50 && s.actor.getSnapshot().value !== value; i++) await settle();
    };
    const driver: Driver = {
      async send(step) {
        const e = step.event as { type: string; output?: { gone: boolean } };
        switch (e.type) {
          case 'schedule.start':
            await rt.start();
            return;
          case 'schedule.stop':
            // A fire held at the gate still completes its slot: the machine left it, the transaction did not.
            if (s.actor.getSnapshot().value === 'firing') expectFired++;
            stopping = rt.stop();
            await settle();
            // A fire held at the gate finishes; stop waits for it.
            take()?.open();
            await stopping;
            return;
          case 'schedule.remove':
            if (s.actor.getSnapshot().value === 'firing') expectFired++;
            removing = s.remove();
            await until('removed');
            take()?.open();
            await removing;
            return;
          case 'xstate.after.untilDue.schedule.waiting':
            await clock.advance(clock.nextIn ?? 0);
            return;
          case 'xstate.done.actor.fire': {
            if (e.output?.gone) await inner.removeSchedule('tick');
            else expectFired++;
            take()?.open();
            await until(e.output?.gone ? 'removed' : 'waiting');
            return;
          }
          case 'xstate.error.actor.fire':
            expectErrors++;
            take()?.fail(new KeelError('STORE_UNAVAILABLE', 'store down (model)'));
            await until('waiting');
            return;
        }
      },
      observe: () => s.actor.getSnapshot().value,
      async check(expected) {
        expect(fired).toHaveLength(expectFired);
        expect(errors).toHaveLength(expectErrors);
        if (expected.value === 'removed') {
          expect(rt.system.system.get('schedule.tick')).toBeUndefined();
          expect(await inner.readSchedule('tick')).toBeUndefined();
        }
        // After a failed fire the slot is still due: next() is now.
        if (expected.value === 'waiting') expect(s.next().getTime()).toBeGreaterThanOrEqual(clock.now());
      },
    };
    try {
      await replayPath(path, driver);
    } finally {
      take()?.open();
      await rt.stop();
      expect(clock.pending).toBe(0);
    }
  });
});
