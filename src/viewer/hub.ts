import type { AnyActorRef, AnyStateMachine, InspectionEvent } from 'xstate';
import { machineGraph } from '../diagram/graph.js';
import { machineSvg } from '../diagram/svg.js';
import { taskMachine } from '../machines/task.js';

/** One actor as the viewer shows it. */
export interface ActorView {
  /** XState's session id: unique in the process. */
  key: string;
  /** Label of the runtime the actor lives in. */
  runtime: string;
  /** System id when it has one (`breaker.sms`), else its id. */
  id: string;
  /** Session id of the parent actor. */
  parent?: string;
  /** Key into the diagrams for machine actors; absent for callback and promise actors. */
  diagram?: string;
  status: 'active' | 'done' | 'error' | 'stopped';
  /** Active leaf states, as paths (`running.working`). */
  states: string[];
  /** The most recent events the actor received, oldest first. */
  events: Array<{ at: number; type: string }>;
  /**
   * Queues only: tasks have no actor each (see `src/machines/task.ts`), so the
   * queue's card carries the task machine's diagram, the count of task
   * transitions into each state seen on the bus, and the latest one.
   */
  tasks?: { diagram: string; counts: Record<string, number>; last?: string };
}

/** A runtime the hub watches. */
export interface RuntimeView {
  label: string;
  status: 'running' | 'stopped';
}

/** What the page receives: a full picture first, then changes. */
export type ViewerMessage =
  | { kind: 'hello'; runtimes: RuntimeView[]; actors: ActorView[]; diagrams: Record<string, string> }
  | { kind: 'diagram'; key: string; svg: string }
  | { kind: 'runtime'; runtime: RuntimeView }
  | { kind: 'actor'; actor: ActorView }
  | { kind: 'drop'; keys: string[]; runtime?: string };

/** Limits that keep a long-running process's viewer small. */
export interface HubLimits {
  /** Events kept per actor. */
  events?: number;
  /** Finished actors (done, stopped) kept per runtime; live ones are always kept. */
  finished?: number;
  /** Stopped runtimes kept (their actors greyed out). */
  runtimes?: number;
}

const isMachine = (logic: unknown): logic is AnyStateMachine =>
  typeof logic === 'object' && logic !== null && 'root' in logic && 'transition' in logic;

/** The actor's snapshot, or undefined while XState announces an actor it has not initialised yet (reading it throws then). */
function snapshotOf(ref: AnyActorRef): { status?: ActorView['status']; value?: unknown } | undefined {
  try {
    return ref.getSnapshot() as { status?: ActorView['status']; value?: unknown } | undefined;
  } catch {
    return undefined;
  }
}

/** What the page shows in place of a diagram elkjs could not lay out: the reason, not a blank card. */
function layoutFailed(id: string, error: unknown): string {
  const text = `no diagram for ${id}: ${error instanceof Error ? error.message : String(error)}`.replace(
    /[&<>"']/g,
    (c) => `&#${c.charCodeAt(0)};`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" class="machine" width="${Math.min(900, text.length * 7 + 16)}" height="28"><text x="8" y="18">${text}</text></svg>`;
}

/** The leaf state paths of a snapshot value: `{ running: 'working' }` → `['running.working']`. */
export function leafStates(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => leafStates(v, `${prefix}${k}.`));
}

/**
 * The viewer's model of live actors, fed by XState inspection events of one or
 * more runtimes. It keeps, per actor, its current states and recent events,
 * draws each distinct machine once, and tells listeners what changed in
 * batches (a burst of transitions becomes one message per actor).
 */
export class ViewerHub {
  private readonly actors = new Map<string, ActorView>();
  private readonly runtimes = new Map<string, RuntimeView>();
  private readonly diagrams = new Map<string, string>();
  private readonly diagramKeys = new WeakMap<object, string>();
  private readonly listeners = new Set<(m: ViewerMessage) => void>();
  private readonly dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly limits: Required<HubLimits>;
  private machineCount = 0;
  private readonly pending = new Set<Promise<void>>();

  constructor(limits: HubLimits = {}) {
    this.limits = { events: limits.events ?? 12, finished: limits.finished ?? 20, runtimes: limits.runtimes ?? 4 };
  }

  /** Everything the hub knows, as the first message of a new page. */
  hello(): ViewerMessage {
    return {
      kind: 'hello',
      runtimes: [...this.runtimes.values()],
      actors: [...this.actors.values()],
      diagrams: Object.fromEntries(this.diagrams),
    };
  }

  /** Calls `fn` with every change; returns the unsubscribe function. */
  listen(fn: (m: ViewerMessage) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Starts showing a runtime; `actors` are the ones that existed before the hub
   * could see them. Returns the label it is shown under (made unique: `name (2)`).
   */
  addRuntime(name: string, actors: AnyActorRef[]): string {
    let label = name;
    for (let n = 2; this.runtimes.has(label); n++) label = `${name} (${n})`;
    const runtime: RuntimeView = { label, status: 'running' };
    this.runtimes.set(label, runtime);
    this.send({ kind: 'runtime', runtime });
    for (const ref of actors) this.upsert(label, ref);
    this.trimRuntimes();
    return label;
  }

  /** Marks a runtime and all of its actors stopped; `root` is read one last time for its final state. */
  stopRuntime(label: string, root?: AnyActorRef): void {
    const rootView = root && this.actors.get(root.sessionId);
    const last = root && snapshotOf(root);
    if (rootView && last) {
      rootView.states = leafStates(last.value);
      rootView.status = last.status ?? rootView.status;
    }
    const runtime = this.runtimes.get(label);
    if (!runtime || runtime.status === 'stopped') return;
    runtime.status = 'stopped';
    this.send({ kind: 'runtime', runtime });
    for (const a of this.actors.values()) {
      if (a.runtime === label && a.status === 'active') {
        a.status = 'stopped';
        this.touch(a.key);
      }
    }
  }

  /** Feeds one inspection event of the runtime `label`. */
  inspect(label: string, ev: InspectionEvent): void {
    const ref = ev.actorRef as AnyActorRef;
    if (ev.type === '@xstate.actor') {
      this.upsert(label, ref);
      return;
    }
    const actor = this.actors.get(ref.sessionId);
    if (!actor) return;
    if (ev.type === '@xstate.event') {
      actor.events.push({ at: Date.now(), type: ev.event.type });
      if (actor.events.length > this.limits.events) actor.events.shift();
      this.touch(actor.key);
    } else if (ev.type === '@xstate.snapshot') {
      const s = ev.snapshot as { status?: ActorView['status']; value?: unknown };
      // XState names the system id only after announcing the actor, so read it again now.
      actor.id = (ref as { systemId?: string }).systemId ?? actor.id;
      actor.states = leafStates(s.value);
      actor.status = s.status ?? actor.status;
      this.touch(actor.key);
      if (actor.status === 'active') return;
      // A finished callback or promise actor (a step, a worker) is only a chip on its parent: gone when it ends.
      if (actor.diagram === undefined) this.drop([actor.key]);
      else this.trimFinished(label);
    }
  }

  /** A task transition published on the bus (`task.<queue>.<state>`) in the runtime `label`. */
  taskEvent(label: string, topic: string): void {
    const parts = topic.split('.');
    const state = parts.at(-1) as string;
    const id = `queue.${parts.slice(1, -1).join('.')}`;
    for (const a of this.actors.values()) {
      if (a.runtime !== label || a.id !== id || !a.tasks) continue;
      a.tasks.counts[state] = (a.tasks.counts[state] ?? 0) + 1;
      a.tasks.last = state;
      this.touch(a.key);
    }
  }

  /** Stops the batching timer. */
  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.listeners.clear();
  }

  private upsert(label: string, ref: AnyActorRef): void {
    const snapshot = snapshotOf(ref);
    const existing = this.actors.get(ref.sessionId);
    const parent = (ref as { _parent?: AnyActorRef })._parent?.sessionId;
    const view: ActorView = {
      key: ref.sessionId,
      runtime: label,
      id: (ref as { systemId?: string }).systemId ?? ref.id,
      ...(parent !== undefined ? { parent } : {}),
      status: snapshot?.status ?? 'active',
      states: leafStates(snapshot?.value),
      events: existing?.events ?? [],
    };
    const diagram = this.diagramOf((ref as { logic?: unknown }).logic);
    if (diagram !== undefined) view.diagram = diagram;
    if (view.id.startsWith('queue.')) {
      view.tasks = existing?.tasks ?? { diagram: this.diagramOf(taskMachine) as string, counts: {} };
    }
    this.actors.set(view.key, view);
    this.touch(view.key);
  }

  /**
   * The key of the logic's diagram. The layout is computed once per machine
   * definition (elkjs, asynchronous): the page gets the key at once and the
   * drawing in a `diagram` message when it is ready.
   */
  private diagramOf(logic: unknown): string | undefined {
    if (!isMachine(logic)) return undefined;
    const known = this.diagramKeys.get(logic);
    if (known !== undefined) return known;
    const key = `${logic.id}#${++this.machineCount}`;
    this.diagramKeys.set(logic, key);
    const drawn: Promise<void> = machineSvg(machineGraph(logic))
      .catch((error: unknown) => layoutFailed(logic.id, error))
      .then((svg) => {
        this.diagrams.set(key, svg);
        this.send({ kind: 'diagram', key, svg });
      })
      .finally(() => this.pending.delete(drawn));
    this.pending.add(drawn);
    return key;
  }

  /** Resolves when every diagram asked for so far is drawn (tests and a first `hello` that should carry them). */
  async diagramsReady(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private trimFinished(label: string): void {
    const finished = [...this.actors.values()].filter(
      (a) => a.runtime === label && a.status !== 'active' && a.diagram !== undefined,
    );
    const drop = finished.slice(0, Math.max(0, finished.length - this.limits.finished)).map((a) => a.key);
    this.drop(drop);
  }

  private trimRuntimes(): void {
    const labels = [...this.runtimes.keys()];
    for (const label of labels.slice(0, Math.max(0, labels.length - this.limits.runtimes))) {
      this.runtimes.delete(label);
      const keys = [...this.actors.values()].filter((a) => a.runtime === label).map((a) => a.key);
      for (const k of keys) this.actors.delete(k);
      this.send({ kind: 'drop', keys, runtime: label });
    }
  }

  private drop(keys: string[]): void {
    if (keys.length === 0) return;
    for (const k of keys) {
      this.actors.delete(k);
      this.dirty.delete(k);
    }
    this.send({ kind: 'drop', keys });
  }

  private touch(key: string): void {
    this.dirty.add(key);
    // Batches a burst of transitions into one message per actor; unref so a forgotten hub never holds the process.
    this.flushTimer ??= setTimeout(() => this.flush(), 25).unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    for (const key of this.dirty) {
      const actor = this.actors.get(key);
      if (actor) this.send({ kind: 'actor', actor });
    }
    this.dirty.clear();
  }

  private send(m: ViewerMessage): void {
    for (const fn of this.listeners) fn(m);
  }
}
