import { Cron } from 'croner';

/** At most this many missed slots are enqueued at once with `missed: 'all'` (the latest ones). */
export const MAX_CATCH_UP = 100;

/** When a schedule's slots fall. Slots are epoch ms; every process computes the same ones. */
export interface Slots {
  /** The first slot strictly after `t`, or undefined when none comes (a cron whose dates have all passed). */
  after(t: number): number | undefined;
  /** The latest `max` slots in `(from, to]`, oldest first. */
  between(from: number, to: number, max: number): number[];
}

/** Slots every `everyMs` since the epoch, so processes started at different times agree on them. */
export function everySlots(everyMs: number): Slots {
  return {
    after: (t) => (Math.floor(t / everyMs) + 1) * everyMs,
    between(from, to, max) {
      const last = Math.floor(to / everyMs);
      const first = Math.max(Math.floor(from / everyMs) + 1, last - max + 1);
      const out: number[] = [];
      for (let k = first; k <= last; k++) out.push(k * everyMs);
      return out;
    },
  };
}

/**
 * Slots of a cron expression read by `croner` in `timezone` (default UTC). A local
 * time that a DST change skips runs at the first minute after the gap; one it
 * repeats runs once (croner's rules).
 */
export function cronSlots(cron: Cron): Slots {
  return {
    after: (t) => cron.nextRun(new Date(t))?.getTime(),
    between(from, to, max) {
      // previousRuns excludes its reference: one ms later includes a slot at `to`.
      const runs = cron.previousRuns(max, new Date(to + 1));
      return runs
        .map((d) => d.getTime())
        .filter((t) => t > from && t <= to)
        .sort((a, b) => a - b);
    },
  };
}

/** A cron (paused: keel arms its own timers on the runtime's clock). Throws croner's error for a bad expression. */
export function parseCron(expression: string, timezone: string | undefined): Cron {
  return new Cron(expression, { paused: true, timezone: timezone ?? 'UTC' });
}

/** What `missed` does with the slots due at one wake-up. */
export type MissedPolicy = 'skip' | 'latest' | 'all';

/**
 * Which of the due slots (oldest first, non-empty) get a task. `skip`: only the
 * latest, and only when it fell after this process began watching (`since`):
 * slots that fell while nothing ran, and earlier slots of a late wake-up (a
 * stalled process), are skipped. `latest`: the latest due slot, always.
 * `all`: every due slot (the caller passes at most `MAX_CATCH_UP`, the latest ones).
 */
export function slotsToEnqueue(due: readonly number[], since: number, missed: MissedPolicy): number[] {
  const latest = due[due.length - 1]!;
  if (missed === 'all') return [...due];
  if (missed === 'latest') return [latest];
  return latest >= since ? [latest] : [];
}
