import { describe, expect, it } from 'vitest';
import { type Deadline, Deadlines } from '../../src/actors/breakerDeadlines.js';
import type { Clock } from '../../src/runtime/clock.js';

/** A clock whose timers are inspectable handles with `unref`, like Node's. */
class HandleClock implements Clock {
  time = 0;
  timers: Array<{ at: number; fn: () => void; unrefd: boolean; cleared: boolean }> = [];
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
  advance(ms: number) {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cleared && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.cleared = true;
      this.time = due.at;
      due.fn();
    }
    this.time = until;
  }
}

function deadline(at: number, log: number[]): Deadline {
  return { deadline: at, prev: undefined, next: undefined, expire: () => log.push(at) };
}

describe('Deadlines', () => {
  it('expires calls in deadline order with one timer at a time, skipping removed ones', () => {
    const clock = new HandleClock();
    const d = new Deadlines(clock);
    const log: number[] = [];
    const calls = [10, 20, 30, 40].map((at) => deadline(at, log));
    for (const c of calls) d.add(c);
    expect(clock.live).toHaveLength(1);
    d.remove(calls[1] as Deadline); // middle
    d.remove(calls[0] as Deadline); // head
    clock.advance(25);
    expect(log).toEqual([]);
    clock.advance(5);
    expect(log).toEqual([30]);
    d.remove(calls[3] as Deadline); // tail
    clock.advance(100);
    expect(log).toEqual([30]);
    expect(d.empty).toBe(true);
  });

  it('never keeps the process alive: every timer is unref-ed', () => {
    const clock = new HandleClock();
    const d = new Deadlines(clock);
    d.add(deadline(10, []));
    expect(clock.timers.every((t) => t.unrefd)).toBe(true);
  });

  it('close() clears the timer at once when idle, otherwise after the last call', () => {
    const clock = new HandleClock();
    const idle = new Deadlines(clock);
    const a = deadline(10, []);
    idle.add(a);
    idle.remove(a);
    idle.close();
    expect(clock.live).toHaveLength(0);

    const busy = new Deadlines(clock);
    const log: number[] = [];
    const b = deadline(clock.time + 50, log);
    busy.add(b);
    busy.close();
    expect(clock.live).toHaveLength(1);
    clock.advance(50);
    expect(log).toHaveLength(1);
    expect(clock.live).toHaveLength(0);
  });

  it('removing a call that is not linked changes nothing', () => {
    const clock = new HandleClock();
    const d = new Deadlines(clock);
    const log: number[] = [];
    const a = deadline(10, log);
    d.add(a);
    d.remove(deadline(5, log));
    clock.advance(10);
    expect(log).toEqual([10]);
  });
});
