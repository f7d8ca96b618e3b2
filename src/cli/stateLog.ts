import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { Runtime } from '../runtime/createRuntime.js';
import { leafStates } from '../viewer/hub.js';
import type { DemoLog } from './demoLog.js';

/** Actors whose state changes make the demo's timeline: the pattern actors, not the plumbing. */
const PATTERN = /^(breaker|queue|saga)\./;

/**
 * Prints each state change of the runtime's pattern actors to the demo log
 * (`breaker.sms  closed → open`), read from XState inspection, so the timeline
 * shows the machines themselves next to what the scenario says.
 */
export function logStateChanges(rt: Runtime<any>, log: DemoLog): void {
  const last = new Map<string, string>();
  const inspection = rt.system.system.inspect((ev: InspectionEvent) => {
    if (ev.type !== '@xstate.snapshot') return;
    const ref = ev.actorRef as AnyActorRef & { systemId?: string };
    const id = ref.systemId;
    if (id === undefined || !PATTERN.test(id)) return;
    const now = leafStates((ev.snapshot as { value?: unknown }).value).join(', ');
    const before = last.get(ref.sessionId);
    if (now === '' || now === before) return;
    last.set(ref.sessionId, now);
    log.line(id, before === undefined ? `starts in ${now}` : `${before} → ${now}`);
  });
  rt.system.subscribe({ complete: () => inspection.unsubscribe(), error: () => inspection.unsubscribe() });
}
