import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMachine, setup } from 'xstate';
import { type ActorFailure, createRuntime, KeelError, memoryStore, type Runtime } from '../../src/index.js';
import { settle } from '../../src/testing/index.js';
import { controlledStore } from '../fixtures/fakeStore.js';
import { runScript } from '../fixtures/script.js';

let rt: Runtime<any> | undefined;
afterEach(async () => {
  await rt?.stop().catch(() => {});
  rt = undefined;
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as KeelError).code;
  }
  return undefined;
}

describe('runtime lifecycle', () => {
  it('goes idle → running → stopped, and start/stop twice are safe', async () => {
    rt = createRuntime();
    expect(rt.state).toBe('idle');
    const a = rt.start();
    const b = rt.start();
    expect(a).toBe(b);
    await a;
    await rt.start();
    expect(rt.state).toBe('running');
    const s1 = rt.stop();
    const s2 = rt.stop();
    expect(s1).toBe(s2);
    await s1;
    await rt.stop();
    expect(rt.state).toBe('stopped');
    expect(rt.system.getSnapshot().status).toBe('done');
  });

  it('opens the store on start and closes it on stop', async () => {
    const store = memoryStore();
    const open = vi.spyOn(store, 'open');
    const close = vi.spyOn(store, 'close');
    rt = createRuntime({ store });
    expect(rt.store).toBe(store);
    await rt.start();
    expect(open).toHaveBeenCalledTimes(1);
    expect(close).not.toHaveBeenCalled();
    await rt.stop();
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('refuses to start again after a stop', async () => {
    rt = createRuntime();
    await rt.stop();
    await expect(rt.start()).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
  });

  it('a failed start rejects with the store error, returns to idle and can be retried', async () => {
    const c = controlledStore();
    rt = createRuntime({ store: c.store });
    const first = rt.start();
    await settle();
    c.opening?.reject(new KeelError('STORE_UNAVAILABLE', 'no database'));
    await expect(first).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(rt.state).toBe('idle');
    const second = rt.start();
    expect(second).not.toBe(first);
    await settle();
    c.opening?.resolve();
    await second;
    expect(rt.state).toBe('running');
    const stopping = rt.stop();
    await settle();
    c.closing?.resolve();
    await stopping;
  });

  it('a stop during start waits for the store to open, then closes it', async () => {
    const c = controlledStore();
    rt = createRuntime({ store: c.store });
    const started = rt.start();
    await settle();
    const stopped = rt.stop();
    await expect(started).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
    expect(rt.state).toBe('stopping');
    expect(c.calls.close).toBe(0);
    c.opening?.resolve();
    await settle();
    expect(c.calls.close).toBe(1);
    c.closing?.resolve();
    await stopped;
    expect(rt.state).toBe('stopped');
  });

  it('a failing store close still stops the runtime and rejects stop()', async () => {
    const c = controlledStore();
    rt = createRuntime({ store: c.store });
    const stopped = rt.stop();
    await settle();
    c.closing?.reject(new Error('disk gone'));
    await expect(stopped).rejects.toThrow('disk gone');
    expect(rt.state).toBe('stopped');
  });

  it('runs components: started in order after the store opens, stopped in reverse before it closes', async () => {
    const order: string[] = [];
    const store = {
      ...memoryStore(),
      kind: 'probe',
      open: async () => void order.push('open'),
      close: async () => void order.push('close'),
    };
    rt = createRuntime({ store });
    for (const name of ['a', 'b']) {
      rt.addComponent({
        kind: 'probe',
        name,
        start: async () => void order.push(`start ${name}`),
        stop: async () => void order.push(`stop ${name}`),
      });
    }
    await rt.start();
    await rt.stop();
    expect(order).toEqual(['open', 'start a', 'start b', 'stop b', 'stop a', 'close']);
  });
});

describe('runtime options', () => {
  it.each<[unknown, string]>([
    [{ store: {} }, 'store'],
    [{ store: 'sqlite' }, 'store'],
    [{ clock: { now: () => 0 } }, 'clock'],
    [{ clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, afterTurn: 1 } }, 'clock.afterTurn'],
    [{ inspect: 42 }, 'inspect'],
  ])('rejects %j with INVALID_OPTIONS naming %s', (options, name) => {
    try {
      createRuntime(options as never);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(KeelError);
      expect((e as KeelError).code).toBe('INVALID_OPTIONS');
      expect((e as Error).message).toContain(`'${name}'`);
    }
  });
});

describe('runtime actors', () => {
  it('an actor that fails is published as runtime.actor.failed; siblings and the runtime live on', async () => {
    rt = createRuntime({ onError: () => {} });
    await rt.start();
    const failures: ActorFailure[] = [];
    rt.bus.subscribe('runtime.actor.failed', (f) => {
      failures.push(f);
    });
    const pings: string[] = [];
    const sibling = rt.spawn(createMachine({ on: { ping: { actions: () => pings.push('pong') } } }), { id: 'sibling' });
    const faulty = rt.spawn(
      setup({}).createMachine({
        on: {
          explode: {
            actions: () => {
              throw new Error('kaboom');
            },
          },
        },
      }),
      { id: 'faulty' },
    );
    faulty.send({ type: 'explode' });
    await settle();
    expect(failures).toEqual([{ actorId: 'faulty', error: expect.objectContaining({ message: 'kaboom' }) }]);
    sibling.send({ type: 'ping' });
    expect(pings).toEqual(['pong']);
    expect(rt.state).toBe('running');
    expect(rt.system.getSnapshot().status).toBe('active');
  });

  it('reports actor failures to onError, and to console.error when nobody listens', async () => {
    const failsAtStart = (message: string) =>
      createMachine({
        entry: () => {
          throw new Error(message);
        },
      });
    const onError = vi.fn();
    rt = createRuntime({ onError });
    rt.spawn(failsAtStart('at start'), { id: 'early' });
    await settle();
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: 'at start' }), "actor 'early' failed");

    const quiet = createRuntime();
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    quiet.spawn(failsAtStart('nobody listens'), { id: 'lonely' });
    await settle();
    expect(log).toHaveBeenCalledWith(
      "keel: actor 'lonely' failed:",
      expect.objectContaining({ message: 'nobody listens' }),
    );
    log.mockRestore();
    await quiet.stop();
  });

  it('spawn refuses a duplicate id and a stopped runtime', async () => {
    rt = createRuntime();
    rt.spawn(createMachine({}), { id: 'one' });
    expect(codeOf(() => rt?.spawn(createMachine({}), { id: 'one' }))).toBe('DUPLICATE_NAME');
    const ref = rt.spawn(createMachine({}), { systemId: 'findme' });
    expect(rt.system.system.get('findme')).toBe(ref);
    await rt.stop();
    expect(codeOf(() => rt?.spawn(createMachine({})))).toBe('RUNTIME_STOPPED');
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])(
    'spawn takes the id %j (an Object.prototype name) like any other',
    async (id) => {
      rt = createRuntime();
      await rt.start();
      const pings: string[] = [];
      const ref = rt.spawn(createMachine({ on: { ping: { actions: () => pings.push('pong') } } }), {
        id,
        systemId: `sys-${id}`,
      });
      expect(ref.id).toBe(id);
      const children = rt.system.getSnapshot().children as Record<string, unknown>;
      expect(Object.hasOwn(children, id)).toBe(true);
      expect(children[id]).toBe(ref);
      expect(rt.system.system.get(`sys-${id}`)).toBe(ref);
      ref.send({ type: 'ping' });
      expect(pings).toEqual(['pong']);
      expect(codeOf(() => rt?.spawn(createMachine({}), { id }))).toBe('DUPLICATE_NAME');
    },
  );

  it('the inspector sees the runtime, the bus and spawned actors', async () => {
    const seen = new Set<string>();
    rt = createRuntime({ inspect: (ev) => seen.add(`${ev.type}:${(ev.actorRef as unknown as { id: string }).id}`) });
    rt.spawn(createMachine({}), { id: 'watched' });
    await rt.start();
    expect(seen).toContain('@xstate.actor:runtime');
    expect(seen).toContain('@xstate.actor:bus');
    expect(seen).toContain('@xstate.actor:watched');
    expect(seen).toContain('@xstate.snapshot:runtime');
  });
});

describe('runtime handles', () => {
  it('a script that stops its runtime exits by itself: bus, breaker, SQLite queue, saga and a sleeping actor in use', async () => {
    const script = fileURLToPath(new URL('../fixtures/exitsAfterStop.ts', import.meta.url));
    const started = Date.now();
    // Killed (code null) if it has not exited by itself within 15 s.
    const { code } = await runScript(script, [], 15_000);
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
