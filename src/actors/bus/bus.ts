import type { AnyActorRef } from 'xstate';
import type { Clock } from '../../core/clock.js';
import { KeelError } from '../../core/errors.js';
import { busMachine } from '../../machines/bus.js';
import type { DurableHandler, DurableSubscriptions } from './durable.js';
import type { DurableSubscribeOptions } from './durableOptions.js';
import { type BusEvent, envelopeFactory } from './event.js';
import { TopicIndex } from './topicIndex.js';

export type { Delivery, DurableHandler, RecordFailure } from './durable.js';
export type { BusOptions, DurableSubscribeOptions } from './durableOptions.js';
export type { BusEvent } from './event.js';

/** A map from topic to payload type; `Record<string, any>` leaves the bus untyped. */
export type EventMap = Record<string, unknown>;

/** A function subscriber; may be async. */
export type BusHandler<TData = unknown> = (payload: TData, event: BusEvent<string, TData>) => unknown;

/** What a failing handler publishes on `bus.handler.failed`. */
export interface HandlerFailure {
  type: string;
  error: unknown;
  subscription: { id: number; topic: string };
}

/** Options of one publish. */
export interface PublishOptions {
  /** Who published (CloudEvents `source`). */
  source?: string;
  /** @internal carried from another runtime (the Postgres bus bridge), which recorded it for durable subscriptions already. */
  bridged?: boolean;
}

/** Options of a publish inside the caller's transaction (the outbox pattern). */
export interface TransactionalPublishOptions extends PublishOptions {
  /**
   * The caller's open transaction (for `postgresStore`, a `pg` client after
   * `BEGIN`): the event is recorded for the durable subscriptions in it, so it
   * commits or rolls back with the caller's own writes. Plain subscribers do
   * not get it (it might still roll back).
   */
  tx: unknown;
}

type PayloadFor<E, P extends string> = P extends keyof E ? E[P] : E[keyof E];

interface Subscription {
  readonly seq: number;
  readonly topic: string;
  /** Becomes a no-op on unsubscribe, so a delivery already under way skips it without a check per call. */
  handler: BusHandler<any>;
  readonly wantsEvent: boolean;
  active: boolean;
}

/** The event bus: exact, `*` (one token) and `>` (the rest) topics. */
export interface Bus<E extends EventMap = Record<string, any>> {
  /**
   * Records the event for the durable subscriptions in the caller's transaction
   * `tx`; resolves to the number of durable subscriptions it was recorded for.
   */
  publish<K extends keyof E & string>(topic: K, payload: E[K], options: TransactionalPublishOptions): Promise<number>;
  /**
   * Delivers `payload` to every matching subscriber; returns how many it
   * reached. When a durable subscription (of any runtime on the store) matches,
   * the event is also recorded for it, in one store transaction per turn;
   * `flush()` waits for that, a failure is published as `bus.record.failed`.
   */
  publish<K extends keyof E & string>(topic: K, payload: E[K], options?: PublishOptions): number;
  /**
   * Subscribes durably: every matching event published on any runtime sharing
   * the store reaches subscription `options.durable` at least once, with the
   * queue's retries, dead letters and breaker. Returns the function that stops
   * delivery in this process (events are still recorded; see `unsubscribeDurable`).
   */
  subscribe<P extends string>(
    topic: P,
    handler: DurableHandler<PayloadFor<E, P>>,
    options: DurableSubscribeOptions,
  ): () => void;
  /** Subscribes a function or an actor; returns the function that unsubscribes. */
  subscribe<P extends string>(topic: P, handler: BusHandler<PayloadFor<E, P>> | AnyActorRef): () => void;
  /** Deletes durable subscription `name` for good (no more events are recorded for it); true when it existed. */
  unsubscribeDurable(name: string): Promise<boolean>;
  /**
   * Resolves once every publish made so far is recorded for the durable
   * subscriptions; rejects with a recording failure that no flush reported yet.
   */
  flush(): Promise<void>;
  /** How many subscriptions are held. */
  readonly size: number;
  /** False once the bus actor has closed (the runtime stopped): publishes reach nobody. */
  readonly open: boolean;
}

/** The bus implementation behind `rt.bus` and the bus actor. */
export class EventBus<E extends EventMap = Record<string, any>> implements Bus<E> {
  private readonly index = new TopicIndex<Subscription>();
  private readonly envelope = envelopeFactory();
  /** The time of this turn's envelopes, once one was made (`BusEvent.time` says how far it may lag). */
  private stamp: number | undefined;
  private readonly endTurn = () => {
    this.stamp = undefined;
  };
  private seq = 0;
  private eventSeq = 0;
  private delivering = false;
  /** Publishes made during a delivery, four slots each: subscriptions, topic, payload, envelope. */
  private readonly backlog: unknown[] = [];
  private isOpen = true;
  /** Unsubscribe functions of actors subscribed through `bus.subscribe` events, by actor and topic. */
  private readonly actorSubs = new WeakMap<AnyActorRef, Map<string, () => void>>();
  /** Records publishes for durable subscriptions; set only while some durable subscription is known. */
  private recorder: ((topic: string, payload: unknown, source?: string) => void) | undefined;
  private durable: DurableSubscriptions | undefined;

  constructor(
    private readonly clock: Pick<Clock, 'now' | 'afterTurn'>,
    /**
     * Where errors go that cannot be published: failures of `bus.handler.failed`
     * handlers (no loops) and bad requests sent to the bus actor.
     */
    private readonly report: (error: unknown, detail: string) => void = () => {},
  ) {}

  get open(): boolean {
    return this.isOpen;
  }

  get size(): number {
    return this.index.size;
  }

  /** The clock now; kept for the rest of the turn when the clock can tell the turn's end. */
  private stampTurn(): number {
    const now = this.clock.now();
    if (this.clock.afterTurn) {
      this.stamp = now;
      this.clock.afterTurn(this.endTurn);
    }
    return now;
  }

  /** @internal the runtime wires durable subscriptions in (`durable.ts`). */
  attachDurable(
    durable: DurableSubscriptions,
  ): (record: ((topic: string, payload: unknown, source?: string) => void) | undefined) => void {
    this.durable = durable;
    return (record) => {
      this.recorder = record;
    };
  }

  publish<K extends keyof E & string>(topic: K, payload: E[K], options: TransactionalPublishOptions): Promise<number>;
  publish<K extends keyof E & string>(topic: K, payload: E[K], options?: PublishOptions): number;
  publish<K extends keyof E & string>(
    topic: K,
    payload: E[K],
    options?: PublishOptions | TransactionalPublishOptions,
  ): number | Promise<number> {
    if (options !== undefined && (options as Partial<TransactionalPublishOptions>).tx !== undefined) {
      return this.publishIn(topic, payload, options as TransactionalPublishOptions);
    }
    const route = this.index.match(topic);
    // Undefined unless some durable subscription exists: a plain publish pays one check.
    if (this.recorder !== undefined && this.isOpen && options?.bridged !== true) {
      this.recorder(topic, payload, options?.source);
    }
    const subs = route.subs;
    const n = subs.length;
    if (n === 0 || !this.isOpen) return 0;
    const seq = this.eventSeq++;
    // Nobody can see the envelope: skip it and its time.
    const event = route.wantsEvent
      ? this.envelope(topic, payload, this.stamp ?? this.stampTurn(), options?.source, seq)
      : undefined;
    if (this.delivering) {
      // A publish from inside a handler waits, so each subscriber sees events in publish order.
      this.backlog.push(subs, topic, payload, event);
      return n;
    }
    this.delivering = true;
    try {
      deliverAll(this, subs, topic, payload, event);
      if (this.backlog.length !== 0) this.drain();
    } finally {
      this.delivering = false;
    }
    return n;
  }

  /** Delivers the publishes queued during a delivery, oldest first (more may be queued meanwhile). */
  private drain(): void {
    const backlog = this.backlog;
    for (let i = 0; i < backlog.length; i += 4) {
      deliverAll(
        this,
        backlog[i] as readonly Subscription[],
        backlog[i + 1] as string,
        backlog[i + 2],
        backlog[i + 3] as BusEvent | undefined,
      );
    }
    backlog.length = 0;
  }

  private publishIn(topic: string, payload: unknown, options: TransactionalPublishOptions): Promise<number> {
    try {
      if (!this.durable) {
        throw new KeelError('INVALID_OPTIONS', `bus.publish('${topic}'): option 'tx' needs a runtime's bus`);
      }
      return this.durable.publishIn(options.tx, topic, payload, options.source);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async unsubscribeDurable(name: string): Promise<boolean> {
    return this.durable ? this.durable.unsubscribeDurable(name) : false;
  }

  async flush(): Promise<void> {
    await this.durable?.flush();
  }

  subscribe<P extends string>(
    topic: P,
    handler: DurableHandler<PayloadFor<E, P>>,
    options: DurableSubscribeOptions,
  ): () => void;
  subscribe<P extends string>(topic: P, handler: BusHandler<PayloadFor<E, P>> | AnyActorRef): () => void;
  subscribe<P extends string>(
    topic: P,
    handler: BusHandler<PayloadFor<E, P>> | DurableHandler<PayloadFor<E, P>> | AnyActorRef,
    options?: DurableSubscribeOptions,
  ): () => void {
    if (options !== undefined) {
      if (!this.durable) {
        throw new KeelError('INVALID_OPTIONS', `subscribe('${topic}'): option 'durable' needs a runtime's bus`);
      }
      return this.durable.subscribe(topic, handler as DurableHandler, options);
    }
    let fn: BusHandler<any>;
    let ref: AnyActorRef | undefined;
    let wantsEvent = true;
    if (typeof handler === 'function') {
      fn = handler as BusHandler<any>;
      wantsEvent = seesEvent(handler);
    } else if (isActorRef(handler)) {
      ref = handler;
      fn = (payload, event) => (handler as AnyActorRef).send({ type: event.type, payload, event });
    } else {
      throw new KeelError('INVALID_OPTIONS', `subscribe('${topic}'): the handler must be a function or an actor`);
    }
    const sub: Subscription = { seq: this.seq++, topic, handler: fn, wantsEvent, active: true };
    this.index.add(topic, sub);
    const off = () => {
      if (!sub.active) return;
      sub.active = false;
      sub.handler = noop;
      this.index.remove(topic, sub);
    };
    if (ref) {
      const watch = ref.subscribe({ complete: off, error: off });
      return () => {
        watch.unsubscribe();
        off();
      };
    }
    return off;
  }

  /** Unsubscribes an actor subscribed to `topic` (for `bus.unsubscribe` events). */
  unsubscribeActor(topic: string, ref: AnyActorRef): void {
    const offs = this.actorSubs.get(ref);
    const off = offs?.get(topic);
    if (!off) return;
    offs?.delete(topic);
    off();
  }

  /** Subscribes an actor that asked through a `bus.subscribe` event. */
  subscribeActor(topic: string, ref: AnyActorRef): void {
    let offs = this.actorSubs.get(ref);
    if (!offs) {
      offs = new Map();
      this.actorSubs.set(ref, offs);
    }
    if (offs.has(topic)) return;
    offs.set(topic, this.subscribe(topic, ref));
  }

  /** Stops all delivery: later publishes reach nobody. */
  seal(): void {
    this.isOpen = false;
  }

  /** @internal called for a handler that threw or rejected on a publish of `type`. */
  fail(sub: Subscription, type: string, error: unknown): void {
    if (type === 'bus.handler.failed') {
      this.report(error, `a 'bus.handler.failed' handler (subscription ${sub.seq} on '${sub.topic}') failed`);
      return;
    }
    const failure: HandlerFailure = { type, error, subscription: { id: sub.seq, topic: sub.topic } };
    this.publish('bus.handler.failed' as keyof E & string, failure as E[keyof E & string]);
  }
}

/** `event` is undefined only when no subscriber in `subs` can observe it (see `seesEvent`). */
function deliverAll(
  bus: EventBus<any>,
  subs: readonly Subscription[],
  topic: string,
  payload: unknown,
  event: BusEvent | undefined,
): void {
  const n = subs.length;
  let i = 0;
  // One try around the loop, re-entered after a throw, is cheaper than a try per call.
  while (i < n) {
    try {
      for (; i < n; i++) {
        const sub = subs[i] as Subscription;
        const result = sub.handler(payload, event as BusEvent);
        if (result !== undefined && result !== null && typeof (result as PromiseLike<unknown>).then === 'function') {
          watch(bus, sub, topic, result as PromiseLike<unknown>);
        }
      }
    } catch (error) {
      bus.fail(subs[i] as Subscription, topic, error);
      i++;
    }
  }
}

/** Reports a rejection of an async handler. */
function watch(bus: EventBus<any>, sub: Subscription, topic: string, result: PromiseLike<unknown>): void {
  result.then(undefined, (error: unknown) => bus.fail(sub, topic, error));
}

/** An arrow function whose parameter list is empty or one plain identifier. */
const ONE_PLAIN_PARAM_ARROW = /^(?:async\s*)?(?:\(\s*(?:[A-Za-z_$][\w$]*\s*)?\)|[A-Za-z_$][\w$]*)\s*=>/;

/**
 * False only when `fn` provably cannot read its second argument: an arrow
 * function (no `arguments` of its own) taking at most one plain parameter.
 * Anything else (two parameters, rest or default parameters, `function`s,
 * bound or native functions, mocks) is assumed to read the envelope. `length`
 * alone would not do: `(...args) =>` and `(p, e = x) =>` have length 0 and 1.
 */
export function seesEvent(fn: Function): boolean {
  let source: string;
  try {
    source = Function.prototype.toString.call(fn);
  } catch {
    return true;
  }
  return !ONE_PLAIN_PARAM_ARROW.test(source);
}

function noop(): void {}

function isActorRef(x: unknown): x is AnyActorRef {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as AnyActorRef).send === 'function' &&
    typeof (x as AnyActorRef).subscribe === 'function'
  );
}

/** The bus machine with its actions bound to `bus`: the logic of the `bus` actor. */
export function busLogic(bus: EventBus<any>, report: (error: unknown, detail: string) => void) {
  // A throw inside an action would put the bus actor in error for good: report bad requests instead.
  const guarded = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      report(error, what);
    }
  };
  return busMachine.provide({
    actions: {
      deliver: ({ event }) => {
        if (event.type !== 'bus.publish') return;
        guarded(`publish on '${event.topic}' from ${event.source ?? 'an actor'}`, () =>
          bus.publish(event.topic, event.payload, { source: event.source }),
        );
      },
      register: ({ event }) => {
        if (event.type !== 'bus.subscribe') return;
        guarded(`subscribe to '${event.topic}' by ${event.ref?.id}`, () => bus.subscribeActor(event.topic, event.ref));
      },
      unregister: ({ event }) => {
        if (event.type === 'bus.unsubscribe') bus.unsubscribeActor(event.topic, event.ref);
      },
      seal: () => bus.seal(),
    },
  });
}
