import { afterEach, describe, expect, it } from 'vitest';
import { CircuitOpenError, createRuntime, memoryStore, type Runtime } from '../../src/index.js';
import { queueMachine } from '../../src/machines/queue.js';
import type { Queue } from '../../src/runtime/queues.js';
import type { Store } from '../../src/stores/store.js';
import { type ModelStep, planPaths, replayPath, settle, TestClock } from '../../src/testing/index.js';
import { type Deferred, deferred } from '../fixtures/deferred.js';

const GRACE = 100;
/** The retry time of the breaker refusal that gates the queue. */
const GATE = 50;
/** Two tasks on two workers: one still runs after the other was refused, so a gated queue's stop has work to wait for. */
const TASKS = 2;

const events = [
  { type: 'queue.start' },
  { type: 'queue.stop' },
  { type: 'queue.pause' },
  { type: 'queue.resume' },
  { type: 'queue.gate', retryAfterMs: GATE },
  { type: 'queue.ungate' },
  { type: 'xstate.done.actor.finishActive' },
  { type: 'xstate.after.grace.queue.stopping' },
  { type: 'xstate.done.actor.releaseActive' },
  { type: 'xstate.error.actor.releaseActive', error: new Error('disk full') },
] as const;

/**
 * Drives one real queue through its lifecycle. When it runs, two tasks are
 * active with handlers the test settles; one rejecting with a refusal of the
 * queue's breaker gates the queue, and the refusal's retry time ungates it.
 * The store's `settle` can be held so the `aborting` state (releasing the
 * aborted tasks) is observable.
 */
class Harness {
  readonly clock = new TestClock(0);
  readonly errors: unknown[] = [];
  private hold: Deferred | undefined;
  readonly store: Store;
  readonly rt: Runtime;
  readonly q: Queue;
  /** Handlers still running, oldest first. */
  private readonly active: Deferred[] = [];
  private stopping: Promise<void> | undefined;
  /** Tasks still active when the grace period ended (the store keeps them active if releasing them fails). */
  private abortedTasks = 0;
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
    this.rt.breaker('svc', { callTimeoutMs: 0 });
    this.q = this.rt.queue('q', {
      graceMs: GRACE,
      concurrency: TASKS,
      breaker: 'svc',
      handler: () => {
        this.handlerRuns++;
        const run = deferred();
        this.active.push(run);
        return run.promise;
      },
    });
  }

  async send(step: ModelStep): Promise<void> {
    switch (step.event.type) {
      case 'queue.start': {
        await this.rt.start();
        for (let n = 0; n < TASKS; n++) await this.q.enqueue({ n });
        await settle();
        // Working: the tasks are active. Paused: they wait.
        expect(this.handlerRuns).toBe(this.q.actor.getSnapshot().matches({ running: 'working' }) ? TASKS : 0);
        return;
      }
      case 'queue.gate': {
        // The breaker refuses the oldest running task: it waits out the retry time as a retrying task (holding its
        // group's slot), and so does the queue.
        const run = this.active.shift();
        if (!run) throw new Error('no running task to refuse');
        const runs = this.handlerRuns;
        const { retrying } = await this.store.stats('q', this.clock.now());
        run.reject(new CircuitOpenError('svc', GATE));
        await settle();
        expect(await this.store.stats('q', this.clock.now())).toMatchObject({ retrying: retrying + 1 });
        expect(this.handlerRuns).toBe(runs);
        return;
      }
      case 'queue.ungate': {
        // The retry time is over: the refused task is claimed again.
        const runs = this.handlerRuns;
        await this.clock.advance(GATE);
        expect(this.handlerRuns).toBe(runs + 1);
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
        for (const run of this.active.splice(0)) run.resolve();
        await settle();
        return;
      case 'xstate.after.grace.queue.stopping':
        this.hold = deferred();
        this.abortedTasks = this.active.length;
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
    expect((await this.store.stats('q', this.clock.now())).active).toBe(
      this.hold && this.errors.length > 0 ? this.abortedTasks : 0,
    );
  }

  async close(): Promise<void> {
    this.hold?.resolve();
    this.hold = undefined;
    for (const run of this.active.splice(0)) run.resolve();
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
    const claimed = await h.store.claim('q', { limit: TASKS, now: GRACE, leaseUntil: 1e9, token: 'x' });
    expect(claimed).toEqual([expect.objectContaining({ attempt: 1 }), expect.objectContaining({ attempt: 1 })]);
  });
});
