import type { Clock } from '../../core/clock.js';

/** A deadline not known yet: its call started in a turn that has not ended. */
export const UNSTAMPED = Number.POSITIVE_INFINITY;

/** A call waiting for its deadline; linked into the list while in flight. */
export interface Deadline {
  /** Set by `add`: when the call times out (`UNSTAMPED` until the turn it started in ends). */
  deadline: number;
  prev: Deadline | undefined;
  next: Deadline | undefined;
  /** Called once when the deadline passes while the call is still in the list. */
  expire(): void;
}

interface TimerHandle {
  unref?(): unknown;
}

/**
 * Per-call timeouts with one timer per breaker instead of one per call. Every
 * call of a breaker has the same timeout, so deadlines arrive in start order:
 * a linked list in start order is sorted by deadline, adding and removing are
 * O(1), and a single timer armed for the head is enough.
 *
 * The timer is not cleared when the list empties (clearing and re-arming on
 * every call costs more than the call), and it is unref'd: a breaker never
 * keeps the process alive by itself (the guarded I/O does). `close()` clears it.
 *
 * Reading the clock for every call is a fifth of a fast call's cost. When the
 * clock can tell the end of an event-loop turn (`afterTurn`), the calls still
 * in flight when their turn ends share one clock read taken then, and calls
 * that finished within the turn never read the clock. A stamp taken at the end
 * of the turn is never earlier than the call's start: a timeout never fires
 * early, and fires late by at most the rest of the turn its call started in
 * (a delay every Node timer already has while the loop is busy).
 */
export class Deadlines {
  private head: Deadline | undefined;
  private tail: Deadline | undefined;
  private timer: unknown;
  /** When the armed timer fires; undefined when none is armed. */
  private armedAt: number | undefined;
  private closing = false;
  /** An `afterTurn` stamp is scheduled: every unstamped call is after it in the list. */
  private turnPending = false;
  private readonly fire = () => this.expireDue();
  private readonly stampTurn = () => this.stamp();

  constructor(
    private readonly clock: Clock,
    /** Every call's timeout: deadlines are its start plus this, so they arrive in start order. */
    private readonly timeoutMs: number,
  ) {}

  /** True while no call waits. */
  get empty(): boolean {
    return this.head === undefined;
  }

  /** The earliest deadline of a call in flight (one of this turn counts as now + timeout); undefined when none. */
  earliest(): number | undefined {
    const d = this.head;
    if (d === undefined) return undefined;
    return d.deadline === UNSTAMPED ? this.clock.now() + this.timeoutMs : d.deadline;
  }

  /** Links `d`, a call starting now, and sets its deadline (or leaves it for the end of this turn). */
  add(d: Deadline): void {
    d.prev = this.tail;
    d.next = undefined;
    if (this.tail) this.tail.next = d;
    else this.head = d;
    this.tail = d;
    if (this.clock.afterTurn) {
      d.deadline = UNSTAMPED;
      if (!this.turnPending) {
        this.turnPending = true;
        this.clock.afterTurn(this.stampTurn);
      }
      return;
    }
    d.deadline = this.clock.now() + this.timeoutMs;
    if (this.armedAt === undefined) this.arm(d.deadline);
  }

  /** Unlinks `d` (its call finished in time). */
  remove(d: Deadline): void {
    const { prev, next } = d;
    if (prev) prev.next = next;
    else if (this.head === d) this.head = next;
    else return; // not linked
    if (next) next.prev = prev;
    else this.tail = prev;
    d.prev = d.next = undefined;
    if (!this.head) this.onEmpty();
  }

  /** Stops taking part in process lifetime: the timer is cleared as soon as no call waits. */
  close(): void {
    this.closing = true;
    if (!this.head) this.disarm();
  }

  /** The turn ended: the calls of it still in flight (the list's unstamped tail) get one deadline. */
  private stamp(): void {
    this.turnPending = false;
    let d = this.tail;
    if (d === undefined || d.deadline !== UNSTAMPED) return;
    const deadline = this.clock.now() + this.timeoutMs;
    while (d !== undefined && d.deadline === UNSTAMPED) {
      d.deadline = deadline;
      d = d.prev;
    }
    if (this.armedAt === undefined) this.arm((this.head as Deadline).deadline);
  }

  private expireDue(): void {
    this.armedAt = undefined;
    this.timer = undefined;
    const now = this.clock.now();
    let d = this.head;
    while (d && d.deadline <= now) {
      const next = d.next;
      this.head = next;
      if (next) next.prev = undefined;
      else this.tail = undefined;
      d.prev = d.next = undefined;
      d.expire();
      d = this.head;
    }
    // An unstamped head started in this turn; its stamp arms the timer.
    if (this.head) {
      if (this.head.deadline !== UNSTAMPED) this.arm(this.head.deadline);
    } else this.onEmpty();
  }

  private arm(at: number): void {
    this.armedAt = at;
    const timer = this.clock.setTimeout(this.fire, Math.max(0, at - this.clock.now()));
    (timer as TimerHandle | undefined)?.unref?.();
    this.timer = timer;
  }

  private onEmpty(): void {
    if (this.closing) this.disarm();
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = undefined;
  }
}
