/** The envelope every subscriber receives (CloudEvents field names). */
export interface BusEvent<TType extends string = string, TData = unknown> {
  readonly id: string;
  readonly type: TType;
  /**
   * Milliseconds since the epoch, from the runtime's clock. A clock read costs as much as a whole
   * publish, so when the clock can tell the end of an event-loop turn (`afterTurn`, as the system clock
   * can) the envelopes of one turn share one read, taken at the turn's first envelope: an envelope's
   * time is never later than its publish, and earlier by at most the time since that first envelope,
   * which is at most the length of the turn (a synchronous burst of publishes). Times never go
   * backwards. A clock without `afterTurn` (a simulated clock) is read for every envelope: exact times.
   */
  readonly time: number;
  readonly source: string | undefined;
  readonly data: TData;
}

/** Makes the envelope of event number `seq` (the bus owns the counter). */
export type EnvelopeFactory = (
  type: string,
  data: unknown,
  time: number,
  source: string | undefined,
  seq: number,
) => BusEvent;

let busCount = 0;

/** Makes envelope ids: a per-bus prefix and a counter, turned into a string only when read. */
export function envelopeFactory(): EnvelopeFactory {
  const prefix = `${process.pid.toString(36)}-${(busCount++).toString(36)}-${Date.now().toString(36)}-`;
  class Envelope implements BusEvent {
    constructor(
      readonly type: string,
      readonly data: unknown,
      readonly time: number,
      readonly source: string | undefined,
      private readonly seq: number,
    ) {}
    get id(): string {
      return prefix + this.seq.toString(36);
    }
    toJSON() {
      return { id: this.id, type: this.type, time: this.time, source: this.source, data: this.data };
    }
  }
  return (type, data, time, source, seq) => new Envelope(type, data, time, source, seq);
}
