import { afterEach, describe, expect, it } from 'vitest';
import type { AnyMachineSnapshot } from 'xstate';
import {
  CircuitOpenError,
  createRuntime,
  memoryStore,
  NonRetryableError,
  type Runtime,
  sqliteStore,
} from '../../src/index.js';
import { taskMachine } from '../../src/machines/task.js';
import type { Queue, Task } from '../../src/runtime/queues.js';
import type { Store } from '../../src/stores/store.js';
import { type ModelStep, planPaths, replayPath, settle, TestClock } from '../../src/testing/index.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';

const LEASE = 1000;
const GRACE = 50;
const MAX_ATTEMPTS = 2;

const events = [
  { type: 'claim' },
  { type: 'succeed' },
  { type: 'fail', delayMs: 100 },
  { type: 'reject' },
  { type: 'defer', delayMs: 40 },
  { type: 'release' },
  { type: 'leaseExpired' },
  { type: 'redrive' },
  { type: 'cancel' },
  { type: 'xstate.after.backoff.task.retrying' },
] as const;

interface Node {
  rt: Runtime;
  clock: TestClock;
  q: Queue;
}

interface Call {
  task: Task;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Drives one task through the real queue on a shared store. Every
 * runtime ("node") starts paused, so the task only moves when a step says so.
 * A lease expiry is a node that freezes (its clock never moves again) while a
 * new node, later in time, recovers the expired lease at start.
 */
class Harness {
  readonly nodes: Node[] = [];
  readonly calls: Call[] = [];
  id = '';

  /** `storeFor()` gives each node its store; `store` reads what the nodes wrote. */
  constructor(
    private readonly storeFor: () => Store,
    readonly store: Store,
  ) {}

  get node(): Node {
    return this.nodes[this.nodes.length - 1]!;
  }

  async addNode(at: number): Promise<Node> {
    const clock = new TestClock(at);
    const rt = createRuntime({ clock, store: this.storeFor(), onError: () => {} });
    rt.breaker('svc', { failureThreshold: 1000, callTimeoutMs: 0 });
    const q = rt.queue('task', {
      paused: true,
      leaseMs: LEASE,
      graceMs: GRACE,
      breaker: 'svc',
      retry: { maxAttempts: MAX_ATTEMPTS, initialDelayMs: 100, jitter: false },
      handler: (task) =>
        new Promise<void>((resolve, reject) => {
          this.calls.push({ task, resolve, reject });
        }),
    });
    await rt.start();
    await settle();
    const node = { rt, clock, q };
    this.nodes.push(node);
    return node;
  }

  record() {
    return this.store.get('task', this.id, this.node.clock.now());
  }

  async send(step: ModelStep): Promise<void> {
    const n = this.node;
    const call = this.calls[this.calls.length - 1];
    switch (step.event.type) {
      case 'claim': {
        const rec = await this.record();
        if (rec && rec.runAt > n.clock.now()) await n.clock.advance(rec.runAt - n.clock.now());
        const before = this.calls.length;
        n.q.resume();
        for (let i = 0; i < 20 && this.calls.length === before; i++) await settle();
        n.q.pause();
        await settle();
        return;
      }
      case 'succeed':
        call!.resolve();
        return settle();
      case 'fail':
        call!.reject(new Error('boom'));
        return settle();
      case 'reject':
        call!.reject(new NonRetryableError('permanent'));
        return settle();
      case 'defer':
        call!.reject(new CircuitOpenError('svc', 40));
        return settle();
      case 'release': {
        const stopped = n.rt.stop();
        await n.clock.advance(GRACE);
        await stopped;
        return;
      }
      case 'leaseExpired': {
        // This node freezes: no renewal ever comes. A later node finds the lease run out.
        const rec = await this.record();
        await this.addNode(rec!.leaseUntil! + 1);
        return;
      }
      case 'redrive':
        await n.q.redrive(this.id);
        return settle();
      case 'cancel': {
        const active = (await this.record())?.state === 'active';
        expect(await n.q.cancel(this.id)).toBe('cancelled');
        await settle();
        // A running handler's signal aborts with CANCELLED; the task is not settled by it afterwards.
        if (active) expect((this.calls.at(-1)!.task.signal.reason as { code?: string }).code).toBe('CANCELLED');
        return;
      }
      case 'xstate.after.backoff.task.retrying': {
        const rec = await this.record();
        await n.clock.advance(rec!.runAt - n.clock.now());
        return;
      }
      default:
        throw new Error(`no driver for ${step.event.type}`);
    }
  }

  async observe(): Promise<string> {
    // Every state is read from the store: finished tasks are kept (task history).
    const rec = await this.record();
    return rec ? rec.state : 'missing';
  }

  async check(expected: AnyMachineSnapshot): Promise<void> {
    const rec = await this.record();
    if (rec) expect(rec.attempt).toBe(expected.context.attempt);
    // A handler sees the attempt the machine counted.
    if (expected.value === 'active') expect(this.calls.at(-1)!.task.attempt).toBe(expected.context.attempt);
  }

  async close(): Promise<void> {
    for (const n of this.nodes) {
      const stopped = n.rt.stop();
      await n.clock.advance(GRACE + 1);
      await stopped.catch(() => {});
    }
  }
}

const stores: Array<[string, () => { storeFor: () => Store; cleanup: () => void }]> = [
  [
    'memory',
    () => {
      const shared = memoryStore();
      return { storeFor: () => shared, cleanup: () => {} };
    },
  ],
  [
    'sqlite',
    () => {
      const path = `${tempPath('model-task')}.db`;
      return {
        storeFor: () => sqliteStore({ path }),
        cleanup: () => removeDb(path),
      };
    },
  ],
];

describe('task lifecycle, model-based', () => {
  const plan = planPaths(taskMachine, { events: events as never, input: { maxAttempts: MAX_ATTEMPTS } });
  console.log(plan.coverage.format('task'));

  it('covers every state and transition of the task machine', () => {
    expect(plan.coverage.complete).toBe(true);
  });

  let harness: Harness | undefined;
  let cleanup: (() => void) | undefined;
  afterEach(async () => {
    await harness?.close();
    await harness?.store.close();
    cleanup?.();
    harness = undefined;
  });

  const cases = stores.flatMap(([name, make]) => plan.paths.map((p) => [name, p.description, make, p] as const));
  it.each(cases)('%s store: replays %s against the real queue', async (_s, _d, make, path) => {
    const made = make();
    cleanup = made.cleanup;
    const observer = made.storeFor();
    await observer.open();
    const h = (harness = new Harness(made.storeFor, observer));
    const n = await h.addNode(1_000);
    h.id = (await n.q.enqueue({ profile: 'p1' })).id;
    await replayPath(path, {
      send: (step) => h.send(step),
      observe: () => h.observe(),
      check: (expected) => h.check(expected),
    });
  });
});
