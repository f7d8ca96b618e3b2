import { type ActorRefFrom, createActor, fromPromise } from 'xstate';
import { KeelError } from '../../core/errors.js';
import { type FireOutput, type ScheduleWake, scheduleMachine } from '../../machines/schedule.js';
import { isSchedules, type NewTask, type Schedules, type Store } from '../../stores/store.js';
import type { Component, Host } from '../host.js';
import { type ScheduleDefinition, slotsOf } from './options.js';
import { MAX_CATCH_UP, slotsToEnqueue } from './slots.js';

/** A registered schedule (DESIGN.md, "Queue": `rt.schedule`). */
export interface Schedule {
  readonly name: string;
  /** When the next slot falls, as this process sees it. */
  next(): Date;
  /** Stops the schedule here and deletes it from the store: processes sharing the store stop at their next slot. */
  remove(): Promise<void>;
  /** The schedule's XState actor (system id `schedule.<name>`). */
  readonly actor: ScheduleActor;
}

/** The actor of one schedule. */
export type ScheduleActor = ActorRefFrom<typeof scheduleMachine>;

/** What a schedule needs of its runtime. */
export type ScheduleHost = Pick<Host, 'store' | 'clock' | 'report' | 'state' | 'system' | 'whenRunning' | 'publish'>;

/** What `schedule.<name>.fired` carries: the slots handled at one wake-up and the tasks enqueued for them. */
export interface ScheduleFired {
  name: string;
  queue: string;
  /** Epoch ms of the slots that got a task. */
  slots: number[];
  /** The tasks' ids, in the order of `slots`. */
  taskIds: string[];
  /** Due slots that got no task (the `missed` policy). */
  skipped: number;
}

/** The longest a schedule sleeps before looking again: a far slot is reached in steps (and a changed clock is noticed). */
export const MAX_SLEEP_MS = 60 * 60 * 1000;
/** How long a schedule waits after a failed fire (the store was unavailable) before trying again. */
export const RETRY_MS = 1000;
/** How many times a fire re-reads the slot after another process moved it, in one wake-up. */
const MAX_RACES = 5;

/** The task key of one slot: the same in every process, so the slot is identifiable from its task. */
export function slotKey(name: string, slot: number): string {
  return `schedule:${name}:${new Date(slot).toISOString()}`;
}

/**
 * Creates schedule `name`: its actor (system id `schedule.<name>`, a child of
 * the root like a queue's) and the component the runtime starts and stops
 * with itself. `onEnd` is called once when the schedule is removed (here or,
 * seen at a wake-up, by another process) or replaced, so the registry forgets it.
 * `onFired` is called after each fire that enqueued, so a local queue can claim at once.
 */
export function createSchedule(
  host: ScheduleHost,
  name: string,
  def: ScheduleDefinition,
  onEnd: () => void,
  onFired: (fired: ScheduleFired) => void = () => {},
): { schedule: Schedule; component: Component; definition: string } {
  const store = schedulesOf(host.store, name);
  const definition = JSON.stringify(def);
  const slots = slotsOf(def);
  const clock = host.clock;
  const owner = `schedule('${name}')`;
  /** When this process began watching: earlier slots were missed (`missed: 'skip'`). */
  let since = clock.now();
  /** The fire in flight: stop and remove wait for it, so the store is not closed under it. */
  let inflight: Promise<unknown> | undefined;
  let ended = false;

  /** The wake-up for the first slot after `lastSlot` (now, when it is already due). */
  const wakeAfter = (lastSlot: number, now: number): ScheduleWake => {
    const nextAt = slots.after(lastSlot) ?? Number.MAX_SAFE_INTEGER;
    return { nextAt, delayMs: Math.min(MAX_SLEEP_MS, Math.max(0, nextAt - now)) };
  };

  const fireOnce = async (): Promise<FireOutput> => {
    for (let race = 0; ; race++) {
      const row = await store.readSchedule(name);
      // Read after the store answered: a slow store (or a stalled process) may have let more slots fall due.
      const now = clock.now();
      if (!row) return { gone: true };
      // Registered again elsewhere with another definition: that one rules; this process only looks again later.
      if (row.definition !== definition) return { gone: false, ...wakeAfter(Math.max(row.lastSlot, now), now) };
      const due = slots.between(row.lastSlot, now, def.missed === 'all' ? MAX_CATCH_UP : 1);
      if (due.length === 0 || race === MAX_RACES) return { gone: false, ...wakeAfter(row.lastSlot, now) };
      const chosen = slotsToEnqueue(due, since, def.missed);
      const tasks: NewTask[] = chosen.map((slot) => ({ payload: def.payload, key: slotKey(name, slot), runAt: now }));
      const to = due[due.length - 1]!;
      const result = await store.fireSchedule(name, { from: row.lastSlot, to, queue: def.queue, tasks }, now);
      if (result.status === 'gone') return { gone: true };
      if (result.status !== 'fired') continue;
      const fired: ScheduleFired = {
        name,
        queue: def.queue,
        slots: chosen,
        taskIds: result.results.map((r) => r.id),
        skipped: due.length - chosen.length,
      };
      host.publish(`schedule.${name}.fired`, fired, { source: `schedule.${name}` });
      onFired(fired);
      return { gone: false, ...wakeAfter(to, clock.now()) };
    }
  };

  const logic = scheduleMachine.provide({
    actors: {
      fire: fromPromise<FireOutput>(() => {
        const run = fireOnce();
        const settled = run.catch(() => {});
        inflight = settled;
        void settled.finally(() => {
          if (inflight === settled) inflight = undefined;
        });
        return run;
      }),
    },
    actions: {
      reportFailure: ({ event }) =>
        host.report(
          (event as { error?: unknown }).error,
          `${owner}: firing failed; trying again in ${RETRY_MS} ms (the slot stays due)`,
        ),
    },
  });
  if (host.state === 'stopping' || host.state === 'stopped') {
    throw new KeelError('RUNTIME_STOPPED', `${owner}: this runtime was stopped`);
  }
  const id = `schedule.${name}`;
  const actor = createActor(logic, { parent: host.system, id, systemId: id, input: { name, retryMs: RETRY_MS } });
  actor.subscribe({
    complete: () => {
      if (!ended) {
        ended = true;
        onEnd();
      }
    },
    error: (error) => host.report(error, `${owner}: the schedule's actor failed`),
  });
  actor.start();

  /** Ends the actor (`schedule.stop` or `schedule.remove`) and waits for a fire in flight. */
  const end = async (type: 'schedule.stop' | 'schedule.remove') => {
    actor.send({ type });
    await inflight;
  };

  const component: Component = {
    kind: 'schedule',
    name,
    start: async () => {
      if (actor.getSnapshot().status !== 'active') return;
      const now = clock.now();
      const row = await store.saveSchedule(name, definition, now);
      // Stopped or replaced while saving: nothing to arm.
      if (actor.getSnapshot().status !== 'active') return;
      since = now;
      actor.send({ type: 'schedule.start', ...wakeAfter(row.lastSlot, now) });
    },
    stop: () => end('schedule.stop'),
  };

  const schedule: Schedule = {
    name,
    actor,
    next() {
      const now = clock.now();
      const s = actor.getSnapshot();
      const planned = s.status === 'active' && s.value !== 'idle' ? s.context.nextAt : undefined;
      return new Date(planned !== undefined && planned >= now ? planned : (slots.after(now) ?? Number.NaN));
    },
    async remove() {
      await host.whenRunning(`${owner}.remove`);
      await end('schedule.remove');
      await store.removeSchedule(name);
    },
  };
  return { schedule, component, definition };
}

function schedulesOf(store: Store, name: string): Store & Schedules {
  if (!isSchedules(store)) {
    throw new KeelError(
      'INVALID_OPTIONS',
      `schedule('${name}'): the runtime's store (${store.kind}) does not keep schedules (the Schedules methods of the store contract)`,
    );
  }
  return store;
}
