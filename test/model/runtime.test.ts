import { afterAll, describe, expect, it } from 'vitest';
import type { AnyEventObject, AnyMachineSnapshot } from 'xstate';
import { createMachine } from 'xstate';
import { type ActorFailure, createRuntime, type Runtime } from '../../src/index.js';
import { runtimeMachine } from '../../src/machines/runtime.js';
import {
  type Driver,
  eventKind,
  type ModelStep,
  planPaths,
  replayPath,
  settle,
  TestClock,
} from '../../src/testing/index.js';
import { controlledStore } from '../fixtures/fakeStore.js';

const startError = new Error('store refused');
const stopError = new Error('store would not close');

/** The events that can really happen in each lifecycle state. */
function eventsIn(snapshot: AnyMachineSnapshot): AnyEventObject[] {
  const anyTime = [
    { type: 'runtime.spawn', logic: createMachine({}), id: 'child' },
    { type: 'xstate.error.actor.child', error: new Error('child failed') },
  ];
  switch (snapshot.value) {
    case 'idle':
      return [{ type: 'runtime.start' }, { type: 'runtime.stop' }, ...anyTime];
    case 'starting':
      return [
        { type: 'runtime.stop' },
        { type: 'xstate.done.actor.startup' },
        { type: 'xstate.error.actor.startup', error: startError },
      ];
    case 'running':
      return [{ type: 'runtime.stop' }, { type: 'runtime.start' }, ...anyTime];
    case 'stopping':
      return [{ type: 'xstate.done.actor.shutdown' }, { type: 'xstate.error.actor.shutdown', error: stopError }];
    default:
      return [];
  }
}

const plan = planPaths(runtimeMachine, {
  events: eventsIn,
  serializeState: (s) => JSON.stringify(s.value),
});

afterAll(() => {
  console.log(plan.coverage.format('runtime'));
});

/** Drives a real runtime whose store open/close the test settles, and watches its outcomes. */
function lifecycleDriver() {
  const c = controlledStore();
  const rt: Runtime<any> = createRuntime({ store: c.store, clock: new TestClock(), onError: () => {} });
  const failures: ActorFailure[] = [];
  rt.bus.subscribe('runtime.actor.failed', (f) => {
    failures.push(f);
  });
  let started: Promise<unknown> | undefined;
  let stopped: Promise<unknown> | undefined;
  let spawned = 0;
  const outcome = { startRejected: undefined as unknown, stopRejected: undefined as unknown };
  const driver: Driver = {
    async send(step: ModelStep) {
      const kind = eventKind(step.event);
      switch (step.event.type) {
        case 'runtime.start':
          started = rt.start().catch((e) => (outcome.startRejected = e));
          break;
        case 'runtime.stop':
          stopped = rt.stop().catch((e) => (outcome.stopRejected = e));
          break;
        case 'runtime.spawn':
          rt.spawn(createMachine({}), { id: `child-${++spawned}` });
          break;
        case 'xstate.done.actor.startup':
          c.opening?.resolve();
          break;
        case 'xstate.error.actor.startup':
          c.opening?.reject(startError);
          break;
        case 'xstate.done.actor.shutdown':
          c.opening?.resolve();
          await settle();
          c.closing?.resolve();
          break;
        case 'xstate.error.actor.shutdown':
          c.opening?.resolve();
          await settle();
          c.closing?.reject(stopError);
          break;
        default:
          if (kind.kind === 'error') {
            const faulty = rt.spawn(
              createMachine({
                on: {
                  fail: {
                    actions: () => {
                      throw new Error('child failed');
                    },
                  },
                },
              }),
            );
            faulty.send({ type: 'fail' });
          } else throw new Error(`no driver for ${step.event.type}`);
      }
      await settle();
    },
    observe: () => rt.state,
    async check(expected, index) {
      if (index === 0) return;
      const step = expected;
      if (step.value === 'idle' && step.context.startError) {
        await started;
        expect(outcome.startRejected).toBe(startError);
      }
      if (step.value === 'stopped') {
        await stopped;
        expect(outcome.stopRejected).toBe(step.context.stopError);
        expect(rt.system.getSnapshot().status).toBe('done');
        expect(rt.bus.open).toBe(false);
      }
    },
  };
  /** Stops the runtime, settling whatever the store still waits for. */
  async function dispose() {
    const stopping = rt.stop().catch(() => {});
    for (let i = 0; i < 5 && rt.state !== 'stopped'; i++) {
      c.opening?.resolve();
      c.closing?.resolve();
      await settle();
    }
    await stopping;
  }
  return { rt, driver, failures, dispose };
}

describe('runtime lifecycle, from its graph', () => {
  it('covers every state and transition', () => {
    expect(plan.coverage.complete, plan.coverage.format('runtime')).toBe(true);
    expect(plan.coverage.states.total).toBe(5);
  });

  it.each(plan.paths.map((p) => [p.description, p]))('%s', async (_name, path) => {
    const d = lifecycleDriver();
    try {
      await replayPath(path, d.driver);
      const failedChildren = path.steps.filter((s) => s.event.type === 'xstate.error.actor.child').length;
      expect(d.failures).toHaveLength(failedChildren);
    } finally {
      await d.dispose();
    }
  });
});
