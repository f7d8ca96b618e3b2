import { afterAll, describe, expect, it } from 'vitest';
import type { AnyActorRef } from 'xstate';
import { createMachine } from 'xstate';
import { createRuntime } from '../../src/index.js';
import { busMachine } from '../../src/machines/bus.js';
import { type Driver, planPaths, replayPath, settle, TestClock } from '../../src/testing/index.js';

const placeholder = { id: 'probe' } as unknown as AnyActorRef;
const plan = planPaths(busMachine, {
  events: [
    { type: 'bus.publish', topic: 'model.published', payload: 1 },
    { type: 'bus.subscribe', topic: 'model.probe', ref: placeholder },
    { type: 'bus.unsubscribe', topic: 'model.probe', ref: placeholder },
    { type: 'bus.close' },
  ],
});

afterAll(() => {
  console.log(plan.coverage.format('bus'));
});

describe('bus machine, from its graph', () => {
  it('covers every state and transition', () => {
    expect(plan.coverage.complete, plan.coverage.format('bus')).toBe(true);
  });

  it.each(plan.paths.map((p) => [p.description, p]))('%s', async (_name, path) => {
    const rt = createRuntime({ clock: new TestClock() });
    const bus = rt.system.system.get('bus') as AnyActorRef;
    const published: unknown[] = [];
    rt.bus.subscribe('model.published', (p) => {
      published.push(p);
    });
    const probeSeen: unknown[] = [];
    const probe = rt.spawn(
      createMachine({ on: { 'model.probe': { actions: ({ event }) => probeSeen.push(event.payload) } } }),
      {
        id: 'probe',
      },
    );
    let expectProbe = false;
    let expectPublished = 0;
    const driver: Driver = {
      async send(step) {
        const e = step.event as { type: string; topic?: string; payload?: unknown };
        if (e.type === 'bus.close') {
          await rt.stop();
          return;
        }
        if (e.type === 'bus.publish') expectPublished++;
        if (e.type === 'bus.subscribe') expectProbe = true;
        if (e.type === 'bus.unsubscribe') expectProbe = false;
        bus.send(e.type === 'bus.publish' ? e : { ...e, ref: probe });
        await settle();
      },
      observe: () => bus.getSnapshot().value,
      async check(expected) {
        if (expected.value === 'closed') {
          expect(rt.bus.publish('model.probe', 'late')).toBe(0);
          expect(probeSeen).not.toContain('late');
          return;
        }
        expect(published).toHaveLength(expectPublished);
        const before = probeSeen.length;
        rt.bus.publish('model.probe', 'check');
        await settle();
        expect(probeSeen.length - before).toBe(expectProbe ? 1 : 0);
      },
    };
    try {
      await replayPath(path, driver);
    } finally {
      await rt.stop();
    }
  });
});
