import { type DurableEvent, type NewTask, topicMatches } from './store.js';

/** A stored durable subscription as the fan-out reads it. */
export interface FanOutSubscription {
  pattern: string;
  /** The dot path into each event's payload that names its task's group (`DurableSubscribeOptions.groupBy`). */
  groupBy?: string | undefined;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Each envelope parsed once per recording, however many grouped subscriptions read it. */
const parsed = new WeakMap<DurableEvent, unknown>();

/**
 * The tasks `events` become on the queue of a subscription to `sub`: one per
 * event whose topic matches, due at `now`, grouped by `sub.groupBy`. Every
 * store fans out through this one function, so all of them group alike.
 */
export function durableTasks(sub: FanOutSubscription, events: readonly DurableEvent[], now: number): NewTask[] {
  const tasks: NewTask[] = [];
  for (const e of events) {
    if (!topicMatches(sub.pattern, e.topic)) continue;
    const group = sub.groupBy === undefined ? undefined : groupOf(e, sub.groupBy);
    tasks.push(group === undefined ? { payload: e.envelope, runAt: now } : { payload: e.envelope, runAt: now, group });
  }
  return tasks;
}

/**
 * The group `path` names in `event`'s payload: a non-empty string, or a safe
 * integer as its decimal text. Anything else (missing, null, an object, text a
 * store cannot keep) gives no group: the event is still delivered, ungrouped,
 * because a publisher must never lose an event to a subscriber's option.
 */
export function groupOf(event: DurableEvent, path: string): string | undefined {
  let envelope = parsed.get(event);
  if (envelope === undefined) {
    try {
      envelope = JSON.parse(event.envelope) as unknown;
    } catch {
      envelope = null;
    }
    parsed.set(event, envelope);
  }
  let value = (envelope as { data?: unknown } | null)?.data;
  for (const step of path.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, step)) return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  if (typeof value !== 'string' || value === '' || value.includes('\u0000') || LONE_SURROGATE.test(value)) {
    return undefined;
  }
  return value;
}
