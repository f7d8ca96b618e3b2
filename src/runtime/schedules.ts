import { checkQueueName } from '../actors/queue/options.js';
import {
  checkScheduleName,
  resolveScheduleOptions,
  type ScheduleOptions,
  slotsOf,
} from '../actors/schedule/options.js';
import { createSchedule, type Schedule } from '../actors/schedule/schedule.js';
import { invalidOptions, KeelError } from '../core/errors.js';
import { isSchedules } from '../stores/store.js';
import type { RuntimeParts } from './parts.js';
import { queuesOf } from './queues.js';

export type { ScheduleOptions } from '../actors/schedule/options.js';
export type { Schedule, ScheduleActor, ScheduleFired } from '../actors/schedule/schedule.js';
export type { MissedPolicy } from '../actors/schedule/slots.js';

/** One line of `rt.schedules()`. */
export interface ScheduleInfo {
  name: string;
  cron?: string;
  everyMs?: number;
  queue: string;
  /** The next slot still to be handled (in the past when slots were missed while nothing ran). */
  nextAt: Date;
}

interface Entry {
  schedule: Schedule;
  definition: string;
  /** Its start (saving the definition), so a replacement saves after it and its definition wins. */
  starting: Promise<void>;
}

const registries = new WeakMap<RuntimeParts, Map<string, Entry>>();

function registryOf(rt: RuntimeParts): Map<string, Entry> {
  let registry = registries.get(rt);
  if (!registry) registries.set(rt, (registry = new Map()));
  return registry;
}

/**
 * Registers schedule `name` in the runtime (and, once it runs, in the store).
 * The same definition again returns the same schedule; another definition
 * replaces it (here and in the store: the last registration wins).
 */
export function scheduleFor(rt: RuntimeParts, name: string, options: ScheduleOptions): Schedule {
  checkScheduleName(name);
  const def = resolveScheduleOptions(name, options);
  try {
    checkQueueName(def.queue);
  } catch (error) {
    throw invalidOptions(`schedule('${name}')`, 'queue', (error as KeelError).message);
  }
  const registry = registryOf(rt);
  const existing = registry.get(name);
  if (existing && existing.definition === JSON.stringify(def)) return existing.schedule;
  if (existing) {
    // Replaced: the old actor ends at once (its `onEnd` forgets it); the new one saves the new definition.
    existing.schedule.actor.send({ type: 'schedule.stop' });
  }
  const created = createSchedule(
    rt.host,
    name,
    def,
    () => {
      if (registry.get(name)?.schedule === schedule) registry.delete(name);
      rt.removeComponent(component);
    },
    // The store wrote the tasks: this process's queue claims them now, not at its next poll.
    (fired) => queuesOf(rt).get(fired.queue)?.notify(),
  );
  const { schedule, definition } = created;
  const entry: Entry = { schedule, definition, starting: Promise.resolve() };
  const before = existing?.starting;
  const component = {
    ...created.component,
    start: () => {
      entry.starting = (async () => {
        await before?.catch(() => {});
        await created.component.start?.();
      })();
      return entry.starting;
    },
  };
  rt.addComponent(component);
  registry.set(name, entry);
  return schedule;
}

/** Every schedule in the runtime's store (also those registered by other processes sharing it). */
export async function listSchedules(rt: RuntimeParts): Promise<ScheduleInfo[]> {
  await rt.host.whenRunning('schedules()');
  const store = rt.host.store;
  if (!isSchedules(store)) {
    throw new KeelError('INVALID_OPTIONS', `schedules(): the runtime's store (${store.kind}) does not keep schedules`);
  }
  const rows = await store.listSchedules();
  return rows.map((row) => {
    const def = JSON.parse(row.definition) as { cron?: string; everyMs?: number; timezone?: string; queue: string };
    const next = slotsOf(def).after(row.lastSlot);
    return {
      name: row.name,
      ...(def.cron !== undefined && { cron: def.cron }),
      ...(def.everyMs !== undefined && { everyMs: def.everyMs }),
      queue: def.queue,
      nextAt: new Date(next ?? Number.NaN),
    };
  });
}
