import { startsLeft as left, withStarts } from '../rateWindow.js';
import type { ClaimLimits } from '../store.js';
import { KeyHeap, type TimeHeap } from './heap.js';

/** The part of a task row the turns need. */
export interface TurnRow {
  id: number;
  state: 'pending' | 'active' | 'retrying' | 'dead' | 'succeeded' | 'cancelled';
  runAt: number;
  priority: number;
  group: string | undefined;
}

/** One group of a queue: its due tasks in claim order and the tasks holding its slots. */
interface Group {
  due: KeyHeap;
  /** Claimed tasks not yet known to be finished; cleaned as they are counted. */
  held: Set<TurnRow>;
  /** Claim times within the group's rate window (only kept under a `groupRateLimit`). */
  starts: number[];
}

/** The pseudo-group of tasks without a group: '' is never a group's name (`group` must be non-empty). */
const UNGROUPED = '';

/**
 * The memory store's claim order and limits for one queue. The plain path
 * (no priorities, groups or limits seen) pops the time heap directly; once a
 * queue needs more, due tasks move into per-group heaps and groups take turns,
 * least recently served first.
 */
export class Turns {
  /** Ungrouped due tasks by (priority, runAt, id). */
  private readonly due = new KeyHeap();
  private readonly groups = new Map<string, Group>();
  /** Groups with due tasks never visited since they got them: they go before every visited one. */
  private readonly fresh = new Set<string>();
  /** Groups with due tasks, least recently visited first (a Map keeps insertion order). */
  private readonly rotation = new Set<string>();
  /** Claims within the queue's rate window (only kept under a `rateLimit`). */
  private starts: number[] = [];
  /** Set once a task with a priority or group arrives: from then on the queue claims through the turns. */
  sorted = false;
  /** The earliest `runAt` among the due tasks held here (a lower bound), for `nextDueAt`. */
  private earliest = Number.POSITIVE_INFINITY;
  /** Due tasks held here (stale entries included), counted as they come and go: while there are any, `earliest` is when work was due. */
  private queued = 0;

  /** The earliest time a task held here fell due, or undefined when none is. */
  dueAt(): number | undefined {
    return this.queued > 0 ? this.earliest : undefined;
  }

  /** Notes a new or returning task's needs (before it is pushed on the time heap). */
  note(row: TurnRow): void {
    if (row.priority !== 0 || row.group !== undefined) this.sorted = true;
  }

  /**
   * Claims up to `limit` due tasks in turn order under `limits`; `take`
   * activates one row (it was pending or retrying).
   */
  claim(
    ready: TimeHeap,
    rows: ReadonlyMap<number, TurnRow>,
    limit: number,
    now: number,
    limits: ClaimLimits | undefined,
    active: number,
    take: (row: TurnRow) => void,
  ): void {
    // From now on this queue claims here: due tasks live in these heaps, not the time heap.
    this.sorted = true;
    this.moveDue(ready, rows, now);
    let budget = limit;
    if (limits?.globalConcurrency !== undefined) budget = Math.min(budget, limits.globalConcurrency - active);
    if (limits?.rateLimit) budget = Math.min(budget, left(this.starts, limits.rateLimit, now));
    if (budget <= 0) return;
    const startBudget = budget;
    // Each group with due work is visited at most once per claim, in turn order; a visit moves it to the back.
    for (const name of this.nextVisits(limit * 2 + 16)) {
      if (budget <= 0) break;
      let taken = 0;
      if (name === UNGROUPED) {
        while (taken < budget) {
          const row = rows.get(this.pop(this.due));
          if (row === undefined) break;
          if (!isReady(row)) continue;
          take(row);
          taken++;
        }
        this.turnDone(name, this.due.size > 0);
      } else {
        const g = this.groups.get(name)!;
        let room = budget;
        if (limits?.groupConcurrency !== undefined)
          room = Math.min(room, limits.groupConcurrency - holding(g, rows, now));
        if (limits?.groupRateLimit) room = Math.min(room, left(g.starts, limits.groupRateLimit, now));
        while (taken < room) {
          const row = rows.get(this.pop(g.due));
          if (row === undefined) break;
          if (!isReady(row) || row.group !== name) continue;
          take(row);
          if (limits?.groupConcurrency !== undefined) g.held.add(row);
          taken++;
        }
        if (limits?.groupRateLimit) g.starts = withStarts(g.starts, limits.groupRateLimit, now, taken);
        this.turnDone(name, g.due.size > 0);
        if (g.due.size === 0 && holding(g, rows, now) === 0 && g.starts.length === 0) this.groups.delete(name);
      }
      budget -= taken;
    }
    if (limits?.rateLimit) this.starts = withStarts(this.starts, limits.rateLimit, now, startBudget - budget);
    if (this.queued === 0) this.earliest = Number.POSITIVE_INFINITY;
  }

  /** The first `n` groups in turn order (fresh ones first): bounded by `n`, not by how many groups wait. */
  private nextVisits(n: number): string[] {
    const out: string[] = [];
    for (const name of this.fresh) {
      if (out.length >= n) return out;
      out.push(name);
    }
    for (const name of this.rotation) {
      if (out.length >= n) return out;
      out.push(name);
    }
    return out;
  }

  /** Pops `heap`'s next id (-1 when empty), counting it out of the due tasks held here. */
  private pop(heap: KeyHeap): number {
    const id = heap.pop();
    if (id === undefined) return -1;
    this.queued--;
    return id;
  }

  /** Due tasks leave the time heap for their group's heap (ungrouped ones for the queue's own). */
  private moveDue(ready: TimeHeap, rows: ReadonlyMap<number, TurnRow>, now: number): void {
    for (let at = ready.peekAt(); at !== undefined && at <= now; at = ready.peekAt()) {
      const row = rows.get(ready.pop()!);
      if (!row || !isReady(row)) continue;
      const name = row.group ?? UNGROUPED;
      this.earliest = Math.min(this.earliest, row.runAt);
      this.queued++;
      if (row.group === undefined) this.due.push(row.priority, row.runAt, row.id);
      else {
        let g = this.groups.get(name);
        if (!g) {
          g = { due: new KeyHeap(), held: new Set(), starts: [] };
          this.groups.set(name, g);
        }
        // Within a group: priority, then enqueue order (ids grow), so a retried task keeps its place.
        g.due.push(row.priority, row.id, row.id);
      }
      if (!this.rotation.has(name)) this.fresh.add(name);
    }
  }

  private turnDone(name: string, more: boolean): void {
    this.fresh.delete(name);
    this.rotation.delete(name);
    if (more) this.rotation.add(name);
  }
}

function isReady(row: TurnRow): boolean {
  return row.state === 'pending' || row.state === 'retrying';
}

/** The group's slots in use: active tasks and tasks waiting out a backoff (a task that is due again frees its slot). */
function holding(g: Group, rows: ReadonlyMap<number, TurnRow>, now: number): number {
  let n = 0;
  for (const row of g.held) {
    // Finished rows stay in the store's map as history (succeeded, cancelled): only active and retrying ones hold a slot.
    if (rows.get(row.id) !== row || (row.state !== 'active' && row.state !== 'retrying')) g.held.delete(row);
    else if (row.state === 'active' || row.runAt > now) n++;
  }
  return n;
}
