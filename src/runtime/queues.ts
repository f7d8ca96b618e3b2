import { checkQueueName, type QueueOptions, resolveQueueOptions } from '../actors/queue/options.js';
import type { Queue } from '../actors/queue/queue.js';
import { createQueue } from '../actors/queue/queue.js';
import { KeelError } from '../core/errors.js';
import type { RuntimeParts } from './parts.js';

export type { Task, TaskEventPayload } from '../actors/queue/engine.js';
export type { EnqueueOptions, QueueOptions } from '../actors/queue/options.js';
export type { DeadTask, Queue } from '../actors/queue/queue.js';
export type { QueueStats } from '../stores/store.js';

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
  const { queue, component } = createQueue(rt.host, name, resolveQueueOptions(name, options ?? {}));
  rt.addComponent(component);
  registry.set(name, queue);
  return queue;
}
