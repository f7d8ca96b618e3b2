import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, memoryStore, type Runtime } from '../../src/index.js';
import { queueMachine } from '../../src/machines/queue.js';
import type { Queue } from '../../src/runtime/queues.js';
import type { Store } from '../../src/stores/store.js';
import { type ModelStep, planPaths, replayPath, settle, TestClock } from '../../src/testing/index.js';
import { type Deferred, deferred } from '../fixtures/deferred.js';

const GRACE = 100;

const events = [
  { type: 'queue.start' },
  { type: 'queue.stop' },
  { type: 'queue.pause' },
  { type: 'queue.resume' },
  { type: 'xstate.done.actor.finishActive' },
  { type: 'xstate.after.grace.queue.stopping' },
  { type: 'xstate.done.actor.releaseActive' },
  { type: 'xstate.error.actor.releaseActive', error: new Error('disk full') },
] as const;

/**
 * Drives one real queue through its lifecycle. When it runs, one task is
 * active with a handler the test settles; the store's `settle` can be held so
 * the `aborting` state (releasing the aborted task) is observable.
 */
class Harness {
  readonly clock = new TestClock(0);
  readonly errors: unknown[] = [];
  private hold: Deferred | undefined;
  readonly store: Store;
  readonly rt: Runtime;
  readonly q: Queue;
  private finishHandler: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  handlerRuns = 0;

  constructor() {
    const inner = memoryStore();
    this.store = {
      ...inner,
      settle: async (queue, outcomes, now) => {
        if (this.hold) await this.hold.promise;
        return inner.settle(queue, outcomes, now);
      },
    };
    this.rt = createRuntime({ clock: this.clock, store: this.store, onError: (e) => this.errors.push(e) });
    this.q = this.rt.queue('q', {
      graceMs: GRACE,
      handler: () => {
        this.handlerRuns++;
        return new Promise<void>((resolve) => {
          this.finishHandler = resolve;
        });
      },
    });
  }

  async send(step: ModelStep): Promise<void> {
    switch (step.event.type) {
      case 'queue.start': {
        await this.rt.start();
        await this.q.enqueue({ n: 1 });
        await settle();
        // Working: the task is active. Paused: it waits.
        expect(this.handlerRuns).toBe(this.q.actor.getSnapshot().matches({ running: 'working' }) ? 1 : 0);
        return;
      }
      case 'queue.stop':
        this.stopping = this.rt.stop();
        return settle();
      case 'queue.pause':
        this.q.pause();
        return settle();
      case 'queue.resume':
        this.q.resume();
        return settle();
      case 'xstate.done.actor.finishActive':
        this.finishHandler!();
        await settle();
        return;
      case 'xstate.after.grace.queue.stopping':
        this.hold = deferred();
        return this.clock.advance(GRACE);
      case 'xstate.done.actor.releaseActive':
        this.hold!.resolve();
        return settle();
      case 'xstate.error.actor.releaseActive':
        this.hold!.reject(new Error('disk full'));
        return settle();
      default:
        throw new Error(`no driver for ${step.event.type}`);
    }
  }

  async check(value: unknown): Promise<void> {
    if (value !== 'stopped') return;
    // Stopped leaves no timer behind and no task active.
    await this.stopping;
    expect(this.clock.pending).toBe(0);
    expect((await this.store.stats('q', this.clock.now())).active).toBe(this.hold && this.errors.length > 0 ? 1 : 0);
  }

  async close(): Promise<void> {
    this.hold?.resolve();
    this.hold = undefined;
    this.finishHandler?.();
    const stopped = this.rt.stop();
    await this.clock.advance(GRACE);
    await stopped.catch(() => {});
  }
}

describe('queue lifecycle, model-based', () => {
  const plan = planPaths(queueMachine, { events: events as never, input: { concurrency: 1, graceMs: GRACE } });
  console.log(plan.coverage.format('queue'));

  it('covers every state and transition of the queue machine', () => {
    expect(plan.coverage.complete).toBe(true);
  });

  let harness: Harness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it.each(plan.paths.map((p) => [p.description, p] as const))('replays %s against the real queue', async (_d, path) => {
    const h = (harness = new Harness());
    await replayPath(path, {
      send: (step) => h.send(step),
      observe: () => h.q.actor.getSnapshot().value,
      check: (expected) => h.check(expected.value),
    });
  });

  it('a stop after the grace period releases the aborted task, attempt not spent', async () => {
    const h = (harness = new Harness());
    await h.send({ event: { type: 'queue.start' }, state: undefined as never });
    await h.send({ event: { type: 'queue.stop' }, state: undefined as never });
    await h.clock.advance(GRACE);
    const claimed = await h.store.claim('q', { limit: 1, now: GRACE, leaseUntil: 1e9, token: 'x' });
    expect(claimed).toEqual([expect.objectContaining({ attempt: 1 })]);
  });
});
