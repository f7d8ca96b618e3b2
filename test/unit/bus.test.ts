import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, createMachine, setup } from 'xstate';
import { type BusEvent, createRuntime, KeelError, publish, type Runtime } from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';

let rt: Runtime<any>;
const spy = () => vi.fn((_payload?: unknown, _event?: unknown): void => {});
afterEach(async () => {
  await rt?.stop().catch(() => {});
});

function runtime(clock = new TestClock(1_000)) {
  rt = createRuntime({ clock, onError: () => {} });
  return rt;
}

describe('bus: topics', () => {
  it('delivers exact topics and returns the number of subscribers reached', () => {
    const { bus } = runtime();
    const a = spy();
    const b = spy();
    bus.subscribe('user.updated', a);
    bus.subscribe('user.updated', b);
    bus.subscribe('user.created', spy());
    expect(bus.publish('user.updated', { id: 1 })).toBe(2);
    expect(a).toHaveBeenCalledWith({ id: 1 }, expect.objectContaining({ type: 'user.updated' }));
    expect(b).toHaveBeenCalledTimes(1);
    expect(bus.publish('user.deleted', {})).toBe(0);
  });

  it.each([
    {
      rule: '* matches exactly one token',
      pattern: 'order.*',
      published: ['order.placed', 'order', 'order.placed.eu', 'orders.placed'],
      reached: ['order.placed'],
    },
    {
      rule: '* works in the middle of a pattern',
      pattern: 'breaker.*.opened',
      published: ['breaker.sms.opened', 'breaker.sms.closed', 'breaker.sms.x.opened'],
      reached: ['breaker.sms.opened'],
    },
    {
      rule: '> matches one or more trailing tokens, never zero',
      pattern: 'order.>',
      published: ['order', 'order.placed', 'order.placed.eu.west'],
      reached: ['order.placed', 'order.placed.eu.west'],
    },
  ])('$rule', ({ pattern, published, reached }) => {
    const { bus } = runtime();
    const seen: string[] = [];
    bus.subscribe(pattern, (_p, e) => seen.push(e.type));
    for (const topic of published) bus.publish(topic, 1);
    expect(seen).toEqual(reached);
  });

  it('delivers once per subscription even when several patterns of others match', () => {
    const { bus } = runtime();
    const seen: string[] = [];
    bus.subscribe('a.b', () => seen.push('exact'));
    bus.subscribe('a.*', () => seen.push('star'));
    bus.subscribe('a.>', () => seen.push('rest'));
    bus.subscribe('>', () => seen.push('all'));
    expect(bus.publish('a.b', null)).toBe(4);
    expect(seen).toEqual(['exact', 'star', 'rest', 'all']);
  });

  it('delivers in subscription order across exact and wildcard subscriptions', () => {
    const { bus } = runtime();
    const seen: string[] = [];
    bus.subscribe('x.>', () => seen.push('1'));
    bus.subscribe('x.y', () => seen.push('2'));
    bus.subscribe('x.*', () => seen.push('3'));
    bus.publish('x.y', null);
    expect(seen).toEqual(['1', '2', '3']);
  });

  it('treats __proto__, constructor and toString as ordinary topics', () => {
    const { bus } = runtime();
    const seen: string[] = [];
    for (const t of ['__proto__', 'constructor', 'toString', 'a.__proto__'])
      bus.subscribe(t, (_p, e) => seen.push(e.type));
    expect(bus.publish('__proto__', 1)).toBe(1);
    expect(bus.publish('constructor', 1)).toBe(1);
    expect(bus.publish('hasOwnProperty', 1)).toBe(0);
    bus.publish('a.__proto__', 1);
    expect(seen).toEqual(['__proto__', 'constructor', 'a.__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('throws INVALID_TOPIC for bad topics on publish and subscribe', () => {
    const { bus } = runtime();
    for (const bad of ['', 'a..b', 'a.>.b']) {
      expect(() => bus.subscribe(bad, () => {})).toThrow(KeelError);
    }
    for (const bad of ['', 'a.*', 'a.>', 'a..b']) {
      try {
        bus.publish(bad, 1);
        expect.unreachable(`publish('${bad}') should throw`);
      } catch (e) {
        expect((e as KeelError).code).toBe('INVALID_TOPIC');
      }
    }
    expect(bus.size).toBe(0);
  });

  it('unsubscribes with the returned function, and twice is harmless', () => {
    const { bus } = runtime();
    const a = spy();
    const off = bus.subscribe('t.*', a);
    bus.publish('t.x', 1);
    off();
    off();
    expect(bus.publish('t.x', 1)).toBe(0);
    expect(a).toHaveBeenCalledTimes(1);
    expect(bus.size).toBe(0);
  });

  it('an unsubscribe during a delivery stops later deliveries to that subscriber', () => {
    const { bus } = runtime();
    const seen: string[] = [];
    let offB = () => {};
    bus.subscribe('t', () => {
      seen.push('a');
      offB();
    });
    offB = bus.subscribe('t', () => seen.push('b'));
    bus.publish('t', 1);
    bus.publish('t', 2);
    expect(seen).toEqual(['a', 'a']);
  });

  it('rejects a handler that is neither a function nor an actor', () => {
    const { bus } = runtime();
    expect(() => bus.subscribe('t', 42 as never)).toThrow(/must be a function or an actor/);
  });
});

describe('bus: envelope', () => {
  it('carries id, type, time from the runtime clock, source and data', () => {
    const clock = new TestClock(5_000);
    const { bus } = runtime(clock);
    const events: BusEvent[] = [];
    bus.subscribe('t.>', (_p, e) => {
      events.push(e);
    });
    bus.publish('t.a', { n: 1 }, { source: 'svc-a' });
    bus.publish('t.b', { n: 2 });
    const [a, b] = events;
    expect(a).toMatchObject({ type: 't.a', time: 5_000, source: 'svc-a', data: { n: 1 } });
    expect(b?.source).toBeUndefined();
    expect(typeof a?.id).toBe('string');
    expect(a?.id).not.toBe(b?.id);
    expect(JSON.parse(JSON.stringify(a))).toEqual({
      id: a?.id,
      type: 't.a',
      time: 5_000,
      source: 'svc-a',
      data: { n: 1 },
    });
  });
});

describe('bus: handlers that do not read the envelope', () => {
  it('a one-parameter arrow gets the payload and a two-parameter or rest handler on the same topic still gets the envelope', () => {
    const clock = new TestClock(7_000);
    const { bus } = runtime(clock);
    const payloads: unknown[] = [];
    const envelopes: BusEvent[] = [];
    bus.subscribe('t', (p) => {
      payloads.push(p);
    });
    bus.subscribe('t', (_p, e) => {
      envelopes.push(e);
    });
    bus.subscribe('t', (...args: unknown[]) => {
      envelopes.push(args[1] as BusEvent);
    });
    bus.subscribe('t', function (this: unknown, _p: unknown) {
      // biome-ignore lint/complexity/noArguments: a plain function may read its envelope through arguments
      envelopes.push(arguments[1] as BusEvent);
    });
    expect(bus.publish('t', 'x')).toBe(4);
    expect(payloads).toEqual(['x']);
    expect(envelopes).toHaveLength(3);
    for (const e of envelopes) expect(e).toMatchObject({ type: 't', time: 7_000, data: 'x' });
  });

  it('envelope ids stay unique when some publishes make no envelope', () => {
    const { bus } = runtime();
    const ids = new Set<string>();
    bus.subscribe('only.payload', (p) => p);
    bus.subscribe('with.event', (_p, e) => {
      ids.add(e.id);
    });
    for (let i = 0; i < 50; i++) {
      bus.publish('only.payload', i);
      bus.publish('with.event', i);
    }
    expect(ids.size).toBe(50);
  });
});

describe('bus: failures are isolated', () => {
  it('a throwing handler affects neither the publisher nor other subscribers, and is published once', () => {
    const { bus } = runtime();
    const failures: unknown[] = [];
    const after = spy();
    bus.subscribe('bus.handler.failed', (f) => {
      failures.push(f);
    });
    bus.subscribe('t', () => {
      throw new Error('boom');
    });
    bus.subscribe('t', after);
    expect(bus.publish('t', 1)).toBe(2);
    expect(after).toHaveBeenCalledTimes(1);
    expect(failures).toEqual([
      {
        type: 't',
        error: expect.objectContaining({ message: 'boom' }),
        subscription: expect.objectContaining({ topic: 't' }),
      },
    ]);
  });

  it('a rejecting async handler is published as bus.handler.failed', async () => {
    const { bus } = runtime();
    const failures: Array<{ error: unknown }> = [];
    bus.subscribe('bus.handler.failed', (f) => {
      failures.push(f);
    });
    bus.subscribe('t', async () => {
      throw 'not an Error';
    });
    bus.publish('t', 1);
    await settle();
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error).toBe('not an Error');
  });

  it('a failing bus.handler.failed handler is not re-delivered (no loop) and goes to onError', async () => {
    const onError = spy();
    rt = createRuntime({ onError });
    const calls = vi.fn(() => {
      throw new Error('handler of failures fails too');
    });
    rt.bus.subscribe('bus.handler.failed', calls);
    rt.bus.subscribe('t', () => {
      throw new Error('first');
    });
    rt.bus.publish('t', 1);
    await settle();
    expect(calls).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(String(onError.mock.calls[0]?.[1])).toMatch(/bus\.handler\.failed/);
  });
});

describe('bus: order', () => {
  it('keeps publish order per subscriber, also for publishes made inside a handler', () => {
    const { bus } = runtime();
    const seenByB: string[] = [];
    bus.subscribe('x', () => {
      bus.publish('y', 'from-a');
    });
    bus.subscribe('>', (p, e) => seenByB.push(`${e.type}:${p}`));
    bus.publish('x', 'first');
    bus.publish('z', 'third');
    expect(seenByB).toEqual(['x:first', 'y:from-a', 'z:third']);
  });

  it('counts subscribers of a publish made inside a handler', () => {
    const { bus } = runtime();
    let inner = -1;
    bus.subscribe('x', () => {
      inner = bus.publish('y', 1);
    });
    bus.subscribe('y', () => {});
    bus.subscribe('y', () => {});
    bus.publish('x', 1);
    expect(inner).toBe(2);
  });

  it('async handlers are called in publish order', async () => {
    const { bus } = runtime();
    const seen: number[] = [];
    bus.subscribe('t', async (n: number) => {
      seen.push(n);
      await settle(1);
    });
    for (let i = 0; i < 5; i++) bus.publish('t', i);
    await settle();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('bus: actors', () => {
  it('an actor subscriber receives { type, payload, event }', () => {
    const { bus } = runtime();
    const got: unknown[] = [];
    const actor = createActor(
      createMachine({ on: { 'order.placed': { actions: ({ event }) => got.push(event) } } }),
    ).start();
    expect(bus.subscribe('order.placed', actor)).toBeTypeOf('function');
    bus.publish('order.placed', { id: 'o1' });
    expect(got).toEqual([
      { type: 'order.placed', payload: { id: 'o1' }, event: expect.objectContaining({ data: { id: 'o1' } }) },
    ]);
  });

  it('an actor subscriber is dropped when the actor stops', () => {
    const { bus } = runtime();
    const actor = createActor(createMachine({})).start();
    bus.subscribe('t', actor);
    expect(bus.size).toBe(1);
    actor.stop();
    expect(bus.size).toBe(0);
    expect(bus.publish('t', 1)).toBe(0);
  });

  it('a machine in the system publishes through the publish() action and subscribes through bus.subscribe', async () => {
    const r = runtime();
    const seen: unknown[] = [];
    r.bus.subscribe('greeting.sent', (p) => {
      seen.push(p);
    });
    const greeter = setup({
      types: { context: {} as { name: string }, events: {} as { type: 'greet' } | { type: 'ping'; payload: string } },
    }).createMachine({
      context: { name: 'ada' },
      entry: ({ self, system }) => system.get('bus').send({ type: 'bus.subscribe', topic: 'ping', ref: self }),
      on: {
        greet: { actions: publish('greeting.sent', ({ context }) => ({ hello: context.name })) },
        ping: { actions: publish('greeting.sent', ({ event }) => ({ pong: (event as { payload: string }).payload })) },
      },
    });
    const ref = r.spawn(greeter, { id: 'greeter' });
    ref.send({ type: 'greet' });
    await settle();
    expect(seen).toEqual([{ hello: 'ada' }]);
    expect(r.bus.publish('ping', 'p1')).toBe(1);
    await settle();
    expect(seen).toEqual([{ hello: 'ada' }, { pong: 'p1' }]);
    const envelope = spy();
    r.bus.subscribe('greeting.sent', (_p, e) => envelope(e.source));
    ref.send({ type: 'greet' });
    await settle();
    expect(envelope).toHaveBeenCalledWith('greeter');
  });

  it('a bad request sent to the bus actor is reported and the bus keeps working', async () => {
    const onError = spy();
    rt = createRuntime({ onError });
    const bus = rt.system.system.get('bus');
    bus.send({ type: 'bus.publish', topic: 'a.*', payload: 1 });
    const ok = spy();
    rt.bus.subscribe('a.b', ok);
    bus.send({ type: 'bus.publish', topic: 'a.b', payload: 2 });
    await settle();
    expect(onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'INVALID_TOPIC' }),
      expect.stringMatching(/a\.\*/),
    );
    expect(ok).toHaveBeenCalledWith(2, expect.anything());
    expect(bus.getSnapshot().value).toBe('open');
  });

  it('the publish() action does nothing outside a runtime', () => {
    const m = createMachine({ on: { go: { actions: publish('x', 1) } } });
    const a = createActor(m).start();
    expect(() => a.send({ type: 'go' })).not.toThrow();
    expect(a.getSnapshot().status).toBe('active');
  });
});

describe('bus: lifecycle', () => {
  it('is registered in the actor system as bus', () => {
    const r = runtime();
    expect(r.system.system.get('bus')).toBeDefined();
    expect(r.system.system.get('bus').getSnapshot().value).toBe('open');
  });

  it('reaches nobody after the runtime stopped', async () => {
    const r = runtime();
    const a = spy();
    r.bus.subscribe('t', a);
    await r.start();
    await r.stop();
    expect(r.bus.open).toBe(false);
    expect(r.bus.publish('t', 1)).toBe(0);
    expect(a).not.toHaveBeenCalled();
  });
});

describe('bus: types', () => {
  it('typed event maps reject the wrong payload shape at compile time', () => {
    interface Events {
      'user.updated': { id: string };
      [topic: string]: unknown;
    }
    const r = createRuntime<{ 'user.updated': { id: string } }>();
    rt = r as Runtime<any>;
    r.bus.subscribe('user.updated', (p) => {
      const id: string = p.id;
      return id;
    });
    // @ts-expect-error the payload of user.updated has an id string
    r.bus.publish('user.updated', { id: 42 });
    // @ts-expect-error unknown topic for this event map
    r.bus.publish('user.deleted', { id: 'x' });
    const loose = createRuntime<Events>();
    expect(loose.bus.publish('anything.goes', 1)).toBe(0);
    void loose.stop();
  });
});
