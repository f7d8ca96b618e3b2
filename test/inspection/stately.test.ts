import { createBrowserInspector, createInspector, createWebSocketInspector } from '@statelyai/inspect';
import { describe, expect, it } from 'vitest';
import { createRuntime, type RuntimeOptions } from '../../src/index.js';

/** What the Stately inspector receives (the fields keel's test reads). */
interface StatelyEvent {
  type: string;
  name?: string;
  sessionId: string;
  parentId?: string;
  definition?: string;
  snapshot?: { value?: unknown; status?: string };
}

/**
 * Runs every pattern once in a runtime inspected by `inspect`: a breaker that
 * trips, a queue with two workers that delivers two tasks, a saga that fails
 * its last step and compensates, and the bus.
 */
async function exercise(inspect: RuntimeOptions['inspect']): Promise<void> {
  const rt = createRuntime({ inspect });
  const sms = rt.breaker('sms', { failureThreshold: 1, resetTimeoutMs: 60_000 });
  const sync = rt.queue('sync', { concurrency: 2, handler: async () => {} });
  const checkout = rt.saga('checkout', {
    steps: [
      { name: 'createOrder', run: async () => 'o1', compensate: async () => {} },
      {
        name: 'processPayment',
        run: async () => {
          throw new Error('declined');
        },
      },
    ],
    retry: { maxAttempts: 1 },
  });
  await rt.start();
  try {
    await sms.call(async () => Promise.reject(new Error('down'))).catch(() => {});
    await sync.enqueue({ user: 1 });
    await sync.enqueue({ user: 2 });
    await sync.drain();
    expect((await checkout.execute({}, { id: 'c1' })).status).toBe('compensated');
    // Stately's inspector converts events in an idle callback (a timer in Node): let them through.
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    await rt.stop();
  }
}

/** The actor event named `name`, with its parsed definition and the snapshot values it went through. */
function actor(events: StatelyEvent[], name: string) {
  const announced = events.find((e) => e.type === '@xstate.actor' && e.name === name);
  if (!announced) {
    const names = events.filter((e) => e.type === '@xstate.actor').map((e) => e.name);
    throw new Error(`no actor '${name}' in the inspection stream; it has ${names.join(', ')}`);
  }
  const snapshots = events.filter((e) => e.type === '@xstate.snapshot' && e.sessionId === announced.sessionId);
  return {
    event: announced,
    definition: JSON.parse(announced.definition ?? 'null') as { id: string; states?: Record<string, unknown> } | null,
    values: snapshots.map((s) => s.snapshot?.value),
    last: snapshots.at(-1)?.snapshot,
  };
}

function expectEveryPattern(events: StatelyEvent[]): void {
  const runtime = actor(events, 'runtime');
  expect(runtime.definition?.id).toBe('runtime');
  expect(runtime.values).toContain('running');

  const bus = actor(events, 'bus');
  expect(bus.definition?.id).toBe('bus');
  expect(bus.event.parentId).toBe(runtime.event.sessionId);
  expect(bus.values).toContain('open');

  const breaker = actor(events, 'breaker.sms');
  expect(breaker.definition?.id).toBe('breaker');
  expect(Object.keys(breaker.definition?.states ?? {}).sort()).toEqual(['closed', 'halfOpen', 'isolated', 'open']);
  expect(breaker.values).toEqual(expect.arrayContaining(['closed', 'open']));

  const queue = actor(events, 'queue.sync');
  expect(queue.definition?.id).toBe('queue');
  expect(queue.values).toContainEqual({ running: 'working' });
  // Tasks have no actor each: the queue's worker actors run them, and show up as its children.
  for (const worker of ['worker-0', 'worker-1']) {
    const w = actor(events, worker);
    expect(w.event.parentId).toBe(queue.event.sessionId);
    expect(w.event.snapshot?.status).toBe('active');
  }

  const saga = actor(events, 'saga.checkout.c1');
  expect(saga.definition?.id).toBe('checkout');
  expect(Object.keys(saga.definition?.states ?? {})).toEqual(
    expect.arrayContaining(['running', 'compensating', 'compensated']),
  );
  expect(saga.values).toEqual([
    { running: 'createOrder' },
    { running: 'processPayment' },
    { compensating: 'createOrder' },
    'compensated',
  ]);
  expect(saga.last?.status).toBe('done');
}

describe('the Stately inspector sees every pattern actor', () => {
  it('through createInspector: definitions and snapshots of the bus, breakers, queues with their workers, sagas', async () => {
    const events: StatelyEvent[] = [];
    // The same conversion the WebSocket and browser inspectors use, with an adapter that keeps the events.
    const inspector = createInspector({ send: (e) => void events.push(e as unknown as StatelyEvent) });
    await exercise(inspector.inspect);
    expectEveryPattern(events);
  });

  it('through createWebSocketInspector (events wait for the socket until it is started)', async () => {
    const inspector = createWebSocketInspector({ url: 'ws://127.0.0.1:9', autoStart: false });
    await exercise(inspector.inspect);
    const deferred = (inspector.adapter as unknown as { deferredEvents: StatelyEvent[] }).deferredEvents;
    expect(deferred.some((e) => e.type === '@xstate.actor' && e.name === 'breaker.sms')).toBe(true);
  });

  it('through createBrowserInspector, posting to the inspector window', async () => {
    const posted: StatelyEvent[] = [];
    const listeners: Array<(e: { data: unknown }) => void> = [];
    const inspectorWindow = { postMessage: (m: StatelyEvent) => posted.push(m) };
    const page = {
      open: () => inspectorWindow,
      addEventListener: (_type: string, fn: (e: { data: unknown }) => void) => listeners.push(fn),
    };
    const inspector = createBrowserInspector({ window: page as unknown as Window, maxDeferredEvents: 10_000 });
    // The inspector window says it is ready; from then on every event is posted to it.
    for (const fn of listeners) fn({ data: { type: '@statelyai.connected' } });
    await exercise(inspector.inspect);
    expectEveryPattern(posted);
  });
});
