import { checkQueueName, type QueueOptions, resolveQueueOptions } from '../actors/queue/options.js';
import type { Queue } from '../actors/queue/queue.js';
import { createQueue } from '../actors/queue/queue.js';
import { KeelError } from '../core/errors.js';
import type { RuntimeParts } from './parts.js';

export type { Task, TaskEventPayload } from '../actors/queue/engine.js';
export type { EnqueueOptions, QueueOptions } from '../actors/queue/options.js';
export type { DeadTask, Queue } from '../actors/queue/queue.js';
export { DEFAULT_RETENTION, type RetentionOptions } from '../actors/queue/retention.js';
export type { ListQuery, TaskInfo } from '../actors/queue/taskInfo.js';
export type { CancelResult, QueueStats } from '../stores/store.js';

const registries = new WeakMap<RuntimeParts, Map<string, Queue>>();

/** Returns the runtime's queue called `name`, creating it on first use. */
export function queueFor(rt: RuntimeParts, name: string, options?: QueueOptions): Queue {
  checkQueueName(name);
  let registry = registries.get(rt);
  if (!registry) registries.set(rt, (registry = new Map()));
  const existing = registry.get(name);
  if (existing) {
    if (options !== undefined) {
      throw new KeelError(
        'DUPLICATE_NAME',
        `queue('${name}') already exists; call rt.queue('${name}') without options`,
      );
    }
    return existing;
  }
  const map = registry;
  const { queue, component } = createQueue(rt.host, name, resolveQueueOptions(name, options ?? {}), (closed) => {
    // Only this queue: a new one of the same name may already be registered.
    if (map.get(name) === queue) map.delete(name);
    rt.removeComponent(closed);
  });
  rt.addComponent(component);
  registry.set(name, queue);
  return queue;
}

/** The queues created in `rt` so far, by name (the console acts on them). */
export function queuesOf(rt: RuntimeParts): ReadonlyMap<string, Queue> {
  return registries.get(rt) ?? new Map();
}
