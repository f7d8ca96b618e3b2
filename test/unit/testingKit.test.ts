import { describe, expect, it } from 'vitest';
import { assign, createActor, fromPromise, setup } from 'xstate';
import {
  eventKind,
  PathMismatchError,
  planPaths,
  replayPath,
  settle,
  TestClock,
  transitionsOf,
} from '../../src/testing/index.js';
import { deferred } from '../fixtures/deferred.js';

const door = setup({
  types: { context: {} as { knocks: number }, events: {} as { type: 'knock' } | { type: 'open' } },
  guards: { knockedTwice: ({ context }) => context.knocks >= 1 },
  actors: { lock: fromPromise(async () => 'locked') },
}).createMachine({
  id: 'door',
  context: { knocks: 0 },
  initial: 'closed',
  states: {
    closed: {
      on: {
        knock: [
          { guard: 'knockedTwice', target: 'opening' },
          { actions: assign({ knocks: ({ context }) => context.knocks + 1 }) },
        ],
      },
    },
    opening: { after: { 500: 'open' } },
    open: { on: { open: 'locking' } },
    locking: { invoke: { src: 'lock', onDone: 'locked', onError: 'open' } },
    locked: { type: 'final' },
  },
});

const allEvents = [
  { type: 'knock' },
  { type: 'open' },
  { type: 'xstate.after.500.door.opening' },
  { type: 'xstate.done.actor.0.door.locking', output: 'locked' },
  { type: 'xstate.error.actor.0.door.locking', error: new Error('jammed') },
] as const;

describe('planPaths', () => {
  it('counts every state and transition, guarded branches apart', () => {
    expect(transitionsOf(door)).toHaveLength(6);
    const plan = planPaths(door, { events: [...allEvents] });
    expect(plan.coverage.format('door')).toBe('door: 5/5 states, 6/6 transitions');
    expect(plan.coverage.complete).toBe(true);
    for (const path of plan.paths) expect(path.steps[0]?.event.type).toBe('xstate.init');
  });

  it('reports what is missing when events are left out', () => {
    const plan = planPaths(door, { events: [{ type: 'knock' }, { type: 'xstate.after.500.door.opening' }] });
    expect(plan.coverage.complete).toBe(false);
    expect(plan.coverage.states).toMatchObject({ covered: 3, total: 5, missing: ['door.locking', 'door.locked'] });
    expect(plan.coverage.transitions.covered).toBe(3);
    expect(plan.coverage.format('door')).toContain('missing transition door.open --open--> door.locking');
  });

  it('keeps a path for every edge with allEdges', () => {
    const few = planPaths(door, { events: [...allEvents] });
    const all = planPaths(door, { events: [...allEvents], allEdges: true });
    expect(all.paths.length).toBeGreaterThan(few.paths.length);
  });

  it('refuses a call without events', () => {
    expect(() => planPaths(door, {} as never)).toThrow(/option 'events'/);
  });
});

describe('replayPath', () => {
  it('passes when the system follows the model and names the step where it does not', async () => {
    const plan = planPaths(door, { events: [...allEvents] });
    const longest = plan.paths.reduce((a, b) => (b.steps.length > a.steps.length ? b : a));
    const clock = new TestClock();
    const lock = deferred<string>();
    const actor = createActor(door.provide({ actors: { lock: fromPromise(() => lock.promise) } }), { clock }).start();
    await replayPath(longest, {
      async send(step) {
        const k = eventKind(step.event);
        if (k.kind === 'after') await clock.advance(Number(k.delay));
        else if (k.kind === 'error') lock.reject(k.error);
        else if (k.kind === 'done') lock.resolve(k.output as string);
        else actor.send(step.event as never);
        await settle();
      },
      observe: () => actor.getSnapshot().value,
    });

    const broken = createActor(door, { clock: new TestClock() }).start();
    const wrong = replayPath(longest, {
      send: (step) => void (step.event.type === 'knock' ? undefined : 0),
      observe: () => broken.getSnapshot().value,
    });
    await expect(wrong).rejects.toBeInstanceOf(PathMismatchError);
    await expect(wrong).rejects.toThrow(/the model is in "opening" but the runtime is in "closed"/);
  });
});

describe('eventKind', () => {
  it('maps graph events to what a driver does', () => {
    expect(eventKind({ type: 'xstate.after.resetTimeout.breaker.open' })).toEqual({
      kind: 'after',
      delay: 'resetTimeout',
      stateId: 'breaker.open',
    });
    expect(eventKind({ type: 'xstate.done.actor.call', output: 1 } as never)).toEqual({
      kind: 'done',
      actorId: 'call',
      output: 1,
    });
    expect(eventKind({ type: 'xstate.error.actor.call', error: 'e' } as never)).toEqual({
      kind: 'error',
      actorId: 'call',
      error: 'e',
    });
    expect(eventKind({ type: 'go' })).toEqual({ kind: 'event', type: 'go' });
  });
});

describe('TestClock', () => {
  it('fires due timers in order on advance and lets promises settle between them', async () => {
    const clock = new TestClock(100);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@300'), 200);
    clock.setTimeout(() => {
      fired.push('a@150');
      void Promise.resolve().then(() => clock.setTimeout(() => fired.push('c@160'), 10));
    }, 50);
    const dropped = clock.setTimeout(() => fired.push('never'), 10);
    clock.clearTimeout(dropped);
    expect(clock.nextIn).toBe(50);
    await clock.advance(100);
    expect(fired).toEqual(['a@150', 'c@160']);
    expect(clock.now()).toBe(200);
    await clock.advance(100);
    expect(fired).toEqual(['a@150', 'c@160', 'b@300']);
    expect(clock.pending).toBe(0);
  });
});
