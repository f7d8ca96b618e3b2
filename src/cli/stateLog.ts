import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { Runtime } from '../runtime/createRuntime.js';
import { leafStates } from '../viewer/hub.js';
import type { DemoLog } from './demoLog.js';

/** Actors whose state changes make the demo's timeline: the pattern actors, not the plumbing. */
const PATTERN = /^(breaker|queue|saga)\./;

/** States that mean something went wrong: an open or isolated circuit, a saga undoing or undone, a dead task. */
const FAILURE = /(^|\.)(open|isolated|failed|compensated|dead)$|^compensating\./;

/** Whether entering these leaf states is a failure the timeline shows in red. */
export function isFailureState(states: string[]): boolean {
  return states.some((s) => FAILURE.test(s));
}

/** How close together the same change in several runtimes counts as one (a fleet breaker flips in every process). */
const ECHO_MS = 100;

/** Per log: the last time each line was printed, and by which runtime. */
const printed = new WeakMap<DemoLog, Map<string, { at: number; rt: Runtime<any> }>>();

/**
 * Prints each state change of the runtime's pattern actors to the demo log
 * (`breaker.sms  closed → open`), read from XState inspection, so the timeline
 * shows the machines themselves next to what the scenario says. One line per
 * change; a change into a failure state is marked as a failure. The same change
 * of the same actor in another runtime within ECHO_MS is the same story (a
 * fleet breaker shared by three runtimes opens once) and is not repeated.
 */
export function logStateChanges(rt: Runtime<any>, log: DemoLog): void {
  const last = new Map<string, string>();
  const inspection = rt.system.system.inspect((ev: InspectionEvent) => {
    if (ev.type !== '@xstate.snapshot') return;
    const ref = ev.actorRef as AnyActorRef & { systemId?: string };
    const id = ref.systemId;
    if (id === undefined || !PATTERN.test(id)) return;
    const states = leafStates((ev.snapshot as { value?: unknown }).value);
    const now = states.join(', ');
    const before = last.get(ref.sessionId);
    if (now === '' || now === before) return;
    last.set(ref.sessionId, now);
    const text = before === undefined ? `starts in ${now}` : `${before} → ${now}`;
    let seen = printed.get(log);
    if (!seen) printed.set(log, (seen = new Map()));
    const key = `${id}\u0000${text}`;
    const at = Date.now();
    const echo = seen.get(key);
    if (echo && echo.rt !== rt && at - echo.at <= ECHO_MS) return;
    seen.set(key, { at, rt });
    if (isFailureState(states)) log.line(id, text, 'failure');
    else log.line(id, text);
  });
  rt.system.subscribe({ complete: () => inspection.unsubscribe(), error: () => inspection.unsubscribe() });
}
