// The public API exactly as ../shared/DESIGN.md writes it: if this file stops compiling or passing, the contract broke.
import { afterEach, describe, expect, it } from 'vitest';
import {
  CallTimeoutError,
  CircuitOpenError,
  createRuntime,
  KeelError,
  memoryStore,
  type Runtime,
  sqliteStore,
} from '../../src/index.js';
import { settle, TestClock } from '../../src/testing/index.js';

let rt: Runtime<any>;
afterEach(async () => {
  await rt?.stop().catch(() => {});
});

describe('DESIGN.md contract', () => {
  it('runtime: createRuntime({ store, clock, inspect }), start, stop, system', async () => {
    const events: unknown[] = [];
    rt = createRuntime({ store: memoryStore(), clock: new TestClock(), inspect: (ev) => events.push(ev) });
    await rt.start();
    expect(rt.system.getSnapshot().value).toBe('running');
    await rt.stop();
    expect(events.length).toBeGreaterThan(0);
    expect(typeof sqliteStore).toBe('function');
  });

  it('event bus: subscribe, wildcards, actors, publish count, off, INVALID_TOPIC', async () => {
    rt = createRuntime();
    await rt.start();
    const got: string[] = [];
    const off = rt.bus.subscribe('user.updated', (payload, event) => {
      got.push(`${event.type}:${(payload as { id: string }).id}:${typeof event.id}:${typeof event.time}`);
    });
    rt.bus.subscribe('order.*', (_p, e) => {
      got.push(`star:${e.type}`);
    });
    rt.bus.subscribe('order.>', (_p, e) => {
      got.push(`rest:${e.type}`);
    });
    expect(rt.bus.publish('user.updated', { id: 'u1' })).toBe(1);
    expect(rt.bus.publish('order.placed', {})).toBe(2);
    expect(rt.bus.publish('order.placed.eu', {})).toBe(1);
    off();
    expect(rt.bus.publish('user.updated', { id: 'u2' })).toBe(0);
    expect(got).toEqual([
      'user.updated:u1:string:number',
      'star:order.placed',
      'rest:order.placed',
      'rest:order.placed.eu',
    ]);
    expect(() => rt.bus.publish('order.*', {})).toThrow(KeelError);
  });

  it('circuit breaker: call with a signal, state, CircuitOpenError with retryAfterMs, CallTimeoutError, isolate/reset, same name', async () => {
    const clock = new TestClock();
    rt = createRuntime({ clock });
    const sms = rt.breaker('sms', { failureThreshold: 2, callTimeoutMs: 100, resetTimeoutMs: 1_000 });
    expect(rt.breaker('sms')).toBe(sms);
    await expect(sms.call(async (signal) => (signal instanceof AbortSignal ? 'id-1' : 'no signal'))).resolves.toBe(
      'id-1',
    );
    const boom = new Error('down');
    await expect(sms.call(async () => Promise.reject(boom))).rejects.toBe(boom);
    let aborted: AbortSignal | undefined;
    const hanging = sms.call((signal) => {
      aborted = signal;
      return new Promise(() => {});
    });
    const assertion = expect(hanging).rejects.toBeInstanceOf(CallTimeoutError);
    await clock.advance(100);
    await assertion;
    expect(aborted?.aborted).toBe(true);
    expect(sms.state).toBe('open');
    const rejected = await sms.call(async () => 'x').catch((e) => e);
    expect(rejected).toBeInstanceOf(CircuitOpenError);
    expect(rejected).toMatchObject({ breaker: 'sms', code: 'CIRCUIT_OPEN' });
    expect(rejected.retryAfterMs).toBeGreaterThan(0);
    expect(rejected.retryAfterMs).toBeLessThanOrEqual(1_000);
    await clock.advance(1_000);
    expect(sms.state).toBe('halfOpen');
    sms.isolate();
    expect(sms.state).toBe('isolated');
    sms.reset();
    expect(sms.state).toBe('closed');
    expect(sms.actor.getSnapshot()).toBeDefined();
  });

  it('saga: steps with compensate, execute → completed | compensated with reverse order, machine', async () => {
    rt = createRuntime();
    const undone: string[] = [];
    const checkout = rt.saga('checkout', {
      steps: [
        {
          name: 'createOrder',
          run: (ctx) => ({ id: `o-${ctx.input.n}` }),
          compensate: (ctx) => void undone.push(`cancel ${ctx.results.createOrder.id}`),
        },
        { name: 'deductInventory', run: () => 1, compensate: () => void undone.push('put') },
        {
          name: 'processPayment',
          run: (ctx) => {
            if (ctx.input.decline) throw new Error('declined');
            return 'paid';
          },
        },
      ],
    });
    await rt.start();
    const ok = await checkout.execute({ n: 1 });
    expect(ok.status).toBe('completed');
    const r = await checkout.execute({ n: 2, decline: true }, { id: 'fixed' });
    expect(r).toMatchObject({
      status: 'compensated',
      failedStep: 'processPayment',
      compensated: ['deductInventory', 'createOrder'],
    });
    expect(undone).toEqual(['put', 'cancel o-2']);
    expect(checkout.machine.id).toBe('checkout');
  });

  it('task queue: handler, enqueue with key/delay, drain, stats, dead, redrive, events', async () => {
    rt = createRuntime();
    const delivered: unknown[] = [];
    const events: string[] = [];
    rt.bus.subscribe('task.profile-sync.>', (_p, e) => {
      events.push(e.type);
    });
    const sync = rt.queue('profile-sync', {
      handler: async (task) => {
        expect(task.signal).toBeInstanceOf(AbortSignal);
        if ((task.payload as { bad?: boolean }).bad) throw new Error('nope');
        delivered.push(task.payload);
      },
      concurrency: 2,
      retry: { initialDelayMs: 1, maxDelayMs: 5, multiplier: 2, jitter: true, maxAttempts: 2 },
      leaseMs: 30_000,
    });
    await rt.start();
    const a = await sync.enqueue({ user: 1 }, { key: 'u1' });
    const b = await sync.enqueue({ user: 1 }, { key: 'u1' });
    expect(a.deduplicated).toBe(false);
    expect(b).toEqual({ id: a.id, deduplicated: true });
    const bad = await sync.enqueue({ bad: true }, { delayMs: 1 });
    await sync.drain();
    expect(delivered).toEqual([{ user: 1 }]);
    expect(await sync.stats()).toMatchObject({ pending: 0, active: 0, retrying: 0, succeeded: 1, dead: 1 });
    const dead = await sync.dead();
    expect(dead.map((t) => t.id)).toEqual([bad.id]);
    await sync.redrive(bad.id);
    expect((await sync.stats()).dead).toBe(0);
    await sync.drain();
    await settle();
    expect(events).toContain('task.profile-sync.succeeded');
    expect(events).toContain('task.profile-sync.retrying');
    expect(events).toContain('task.profile-sync.dead');
  });
});
