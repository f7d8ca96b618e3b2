import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { EventBus } from '../../src/actors/bus/bus.js';
import type { BusEvent } from '../../src/actors/bus/event.js';
import { systemClock } from '../../src/core/clock.js';

/** A clock whose time and turn ends the test moves by hand. */
function manualClock() {
  let t = 1_000;
  let ends: (() => void)[] = [];
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    setTimeout: () => undefined,
    clearTimeout: () => {},
    afterTurn: (fn: () => void) => {
      ends.push(fn);
    },
    endTurn: () => {
      const due = ends;
      ends = [];
      for (const fn of due) fn();
    },
    pendingTurnEnds: () => ends.length,
  };
}

function recorder(bus: EventBus) {
  const seen: { time: number; at: number }[] = [];
  return {
    seen,
    subscribe(now: () => number) {
      bus.subscribe('t', (_payload: unknown, event: BusEvent) => {
        seen.push({ time: event.time, at: now() });
      });
    },
  };
}

describe('envelope times: one clock read per event-loop turn', () => {
  it('a turn shares the time of its first envelope: never later than a publish, earlier by at most the time since the first', () => {
    const clock = manualClock();
    const bus = new EventBus(clock);
    const r = recorder(bus);
    r.subscribe(clock.now);
    bus.publish('t', 1);
    clock.advance(3);
    bus.publish('t', 2);
    clock.advance(4);
    bus.publish('t', 3);
    expect(r.seen.map((s) => s.time)).toEqual([1_000, 1_000, 1_000]);
    for (const s of r.seen) {
      expect(s.time).toBeLessThanOrEqual(s.at);
      expect(s.at - s.time).toBeLessThanOrEqual(7); // the turn so far
    }
    // One turn-end callback per turn, not one per publish.
    expect(clock.pendingTurnEnds()).toBe(1);
    clock.endTurn();
    clock.advance(5);
    bus.publish('t', 4);
    expect(r.seen[3]!.time).toBe(1_012);
  });

  it('with the system clock: exact at the first publish of a turn, the next turn reads the clock again', async () => {
    const bus = new EventBus(systemClock);
    const r = recorder(bus);
    r.subscribe(() => Date.now());
    const before = Date.now();
    bus.publish('t', 1);
    const spin = Date.now() + 5;
    while (Date.now() < spin) {
      // a busy turn
    }
    bus.publish('t', 2);
    const [a, b] = r.seen as [{ time: number; at: number }, { time: number; at: number }];
    expect(a.time).toBeGreaterThanOrEqual(before);
    expect(b.time).toBe(a.time);
    expect(b.at - b.time).toBeGreaterThanOrEqual(5);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 2));
    bus.publish('t', 3);
    expect(r.seen[2]!.time).toBeGreaterThanOrEqual(spin);
    expect(r.seen[2]!.time).toBeLessThanOrEqual(r.seen[2]!.at);
  });

  it('a clock without afterTurn (simulated) gives every envelope its exact time', () => {
    const clock = new SimulatedClock();
    const bus = new EventBus(clock);
    const r = recorder(bus);
    r.subscribe(() => clock.now());
    bus.publish('t', 1);
    clock.increment(3);
    bus.publish('t', 2);
    expect(r.seen.map((s) => s.time)).toEqual(r.seen.map((s) => s.at));
    expect(r.seen[1]!.time - r.seen[0]!.time).toBe(3);
  });
});
