import { describe, expect, it } from 'vitest';
import { type Deadline, Deadlines } from '../../src/actors/breaker/deadlines.js';
import { type Clock, systemClock } from '../../src/core/clock.js';

/** A clock whose timers are inspectable handles with `unref`, like Node's; `turns` adds `afterTurn`. */
class HandleClock implements Clock {
  time = 0;
  timers: Array<{ at: number; fn: () => void; unrefd: boolean; cleared: boolean }> = [];
  turnEnds: (() => void)[] = [];
  readonly afterTurn?: (fn: () => void) => void;
  constructor(turns = false) {
    if (turns) this.afterTurn = (fn) => void this.turnEnds.push(fn);
  }
  now() {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number) {
    const t = {
      at: this.time + ms,
      fn,
      unrefd: false,
      cleared: false,
      unref() {
        t.unrefd = true;
      },
    };
    this.timers.push(t);
    return t;
  }
  clearTimeout(handle: unknown) {
    (handle as { cleared: boolean }).cleared = true;
  }
  get live() {
    return this.timers.filter((t) => !t.cleared && t.at >= this.time);
  }
  endTurn() {
    const due = this.turnEnds;
    this.turnEnds = [];
    for (const fn of due) fn();
  }
  /** Moves time on, firing due timers; `inTurn` keeps the current turn open (time passes inside it). */
  advance(ms: number, inTurn = false) {
    const until = this.time + ms;
    if (!inTurn) this.endTurn();
    for (;;) {
      const due = this.timers.filter((t) => !t.cleared && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.cleared = true;
      this.time = due.at;
      due.fn();
      this.endTurn();
    }
    this.time = until;
  }
}

/** A call that logs `name@time` when it expires. */
function call(name: string, log: string[], clock: Clock): Deadline {
  return { deadline: 0, prev: undefined, next: undefined, expire: () => log.push(`${name}@${clock.now()}`) };
}

describe('Deadlines', () => {
  it('expires calls in deadline order with one timer at a time, skipping removed ones', () => {
    const clock = new HandleClock();
    const d = new Deadlines(clock, 10);
    const log: string[] = [];
    const calls = ['a', 'b', 'c', 'd'].map((name) => call(name, log, clock));
    for (const [i, c] of calls.entries()) {
      clock.time = i * 10; // due at 10, 20, 30, 40
      d.add(c);
    }
    clock.time = 0;
    expect(clock.live).toHaveLength(1);
    d.remove(calls[1] as Deadline); // middle
    d.remove(calls[0] as Deadline); // head
    clock.advance(25);
    expect(log).toEqual([]);
    clock.advance(5);
    expect(log).toEqual(['c@30']);
    d.remove(calls[3] as Deadline); // tail
    clock.advance(100);
    expect(log).toEqual(['c@30']);
    expect(d.empty).toBe(true);
  });

  it('never keeps the process alive: every timer is unref-ed', () => {
    const clock = new HandleClock();
    const d = new Deadlines(clock, 10);
    d.add(call('a', [], clock));
    expect(clock.timers.every((t) => t.unrefd)).toBe(true);
  });

  it('close() clears the timer at once when idle, otherwise after the last call', () => {
    const clock = new HandleClock();
    const idle = new Deadlines(clock, 10);
    const a = call('a', [], clock);
    idle.add(a);
    idle.remove(a);
    idle.close();
    expect(clock.live).toHaveLength(0);

    const busy = new Deadlines(clock, 50);
    const log: string[] = [];
    busy.add(call('b', log, clock));
    busy.close();
    expect(clock.live).toHaveLength(1);
    clock.advance(50);
    expect(log).toEqual(['b@50']);
    expect(clock.live).toHaveLength(0);
  });

  it('removing a call that is not linked changes nothing', () => {
    const clock = new HandleClock();
    const d = new Deadlines(clock, 10);
    const log: string[] = [];
    d.add(call('a', log, clock));
    d.remove(call('stray', log, clock));
    clock.advance(10);
    expect(log).toEqual(['a@10']);
  });
});

describe('Deadlines stamped at the end of a turn (a clock with afterTurn)', () => {
  it('reads the clock once per turn, and not at all when every call of the turn finished in it', () => {
    const clock = new HandleClock(true);
    let reads = 0;
    const counted: Clock = {
      now: () => {
        reads++;
        return clock.now();
      },
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      clearTimeout: (h) => clock.clearTimeout(h),
      afterTurn: (fn) => clock.afterTurn?.(fn),
    };
    const d = new Deadlines(counted, 10);
    const calls = Array.from({ length: 100 }, (_, i) => call(`c${i}`, [], counted));
    for (const c of calls) d.add(c);
    for (const c of calls) d.remove(c);
    expect(clock.turnEnds).toHaveLength(1);
    clock.endTurn();
    expect(reads).toBe(0);
    expect(clock.live).toHaveLength(0);

    const log: string[] = [];
    const kept = Array.from({ length: 3 }, (_, i) => call(`k${i}`, log, counted));
    for (const c of kept) d.add(c);
    clock.endTurn();
    // One read for the turn's deadline, one to arm the timer for it.
    expect(reads).toBe(2);
    expect(kept.map((c) => c.deadline)).toEqual([10, 10, 10]);
    clock.advance(10);
    expect(log).toEqual(['k0@10', 'k1@10', 'k2@10']);
  });

  it('never times out early: a call counts from the end of the turn it started in', () => {
    const clock = new HandleClock(true);
    const d = new Deadlines(clock, 100);
    const log: string[] = [];
    d.add(call('slow-turn', log, clock));
    clock.advance(30, true); // the rest of the turn takes 30 ms
    clock.endTurn();
    d.add(call('next-turn', log, clock));
    clock.advance(99);
    expect(log).toEqual([]);
    // At 130: the call of the next turn (started at 30) exactly on time; the first call (started at 0)
    // late by the 30 ms its turn went on after it, never early.
    clock.advance(1);
    expect(log).toEqual(['slow-turn@130', 'next-turn@130']);
  });

  it('keeps the list in deadline order across turns, and arms only for stamped calls', () => {
    const clock = new HandleClock(true);
    const d = new Deadlines(clock, 20);
    const log: string[] = [];
    const first = call('first', log, clock);
    d.add(first);
    clock.endTurn(); // due at 20
    expect(clock.live).toHaveLength(1);
    clock.advance(5);
    d.add(call('second', log, clock)); // stamped when this turn ends
    d.remove(first);
    clock.advance(15, true); // the timer armed for `first` fires in this turn: nothing is due
    clock.timers
      .filter((t) => !t.cleared && t.at <= 20)
      .forEach((t) => {
        t.cleared = true;
        t.fn();
      });
    expect(log).toEqual([]);
    clock.endTurn(); // `second` is stamped 20 + 20 and re-arms the timer
    clock.advance(19);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['second@40']);
  });

  it('on the system clock, a call in a long turn is not timed out before its timeout', async () => {
    const d = new Deadlines(systemClock, 40);
    const started = performance.now();
    const expired = new Promise<number>((resolve) => {
      d.add({ deadline: 0, prev: undefined, next: undefined, expire: () => resolve(performance.now()) });
    });
    const busyUntil = started + 25;
    while (performance.now() < busyUntil) {
      // the rest of this turn is busy for 25 ms
    }
    const at = await expired;
    expect(at - started).toBeGreaterThanOrEqual(40);
    d.close();
  });
});
