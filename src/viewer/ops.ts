import type { TaskInfo } from '../actors/queue/taskInfo.js';
import type { SagaInfo } from '../actors/saga/info.js';
import type { QueueStats, TaskRecord } from '../stores/store.js';

/** A dead task as the console lists it. */
export interface OpsDeadTask {
  id: string;
  attempt: number;
  key?: string;
  error?: string;
  /** The payload as stored (JSON text), cut to a few hundred characters. */
  payload: string;
  diedAt: number;
}

/** A queue as the console shows it. */
export interface OpsQueue {
  /** The runtime it belongs to (a runtime's own viewer); absent in the fleet console. */
  runtime?: string;
  name: string;
  stats: QueueStats;
  /** This runtime's queue is paused (by `pause()` or the store's flag); in the fleet console, the store's flag. */
  paused: boolean;
  /** The store's pause flag is set (every runtime on the store obeys it); absent when the store keeps none. */
  pausedInStore?: boolean;
  /** The oldest dead tasks (at most `DEAD_SHOWN`); `stats.dead` says how many there are. */
  dead: OpsDeadTask[];
}

/** An unfinished saga. */
export interface OpsSaga {
  runtime?: string;
  saga: string;
  id: string;
  status: string;
  /** Its machine state, as dotted leaf paths (`running.charge`). */
  state: string;
  updatedAt: number;
}

/** A circuit breaker. */
export interface OpsBreaker {
  runtime?: string;
  name: string;
  state: string;
  /** `fleet` for a breaker shared through the store (the fleet console shows only those). */
  scope?: 'process' | 'fleet';
}

/** What the console's operations panel shows: queues, unfinished sagas, breakers. */
export interface OpsSnapshot {
  /** `runtime`: the viewer of live runtimes; `fleet`: `keel console` on a shared database. */
  source: 'runtime' | 'fleet';
  /** What the console shows (the fleet console: the schema and database). */
  title?: string;
  queues: OpsQueue[];
  sagas: OpsSaga[];
  breakers: OpsBreaker[];
  /** The actions this source can take (the page offers only these); the server adds whether they are on. */
  can: ActionName[];
  /** Every saga name the console can list (with its runtime in a runtime's viewer), finished runs or not. */
  sagaNames?: Array<{ runtime?: string; saga: string }>;
}

/** A task as a console list shows it: what a row needs, the payload and error cut. */
export interface OpsTaskRow {
  id: string;
  state: string;
  attempt: number;
  key?: string;
  group?: string;
  priority?: number;
  /** The payload as JSON text, cut to `PAYLOAD_SHOWN` characters. */
  payload: string;
  error?: string;
  createdAt: number;
  finishedAt?: number;
}

/** A saga run as a console list shows it. */
export interface OpsSagaRow {
  id: string;
  status: string;
  state: string;
  version: string;
  createdAt: number;
  updatedAt: number;
}

/** One page of a console list; `next` is the `after` of the following page. */
export interface OpsPage<T> {
  items: T[];
  next?: string;
}

/** A task or saga run in full, with its machine drawn and the states to highlight on it. */
export type OpsDetail =
  | { kind: 'task'; runtime?: string; queue: string; item: TaskInfo; diagram?: string; states: string[] }
  | { kind: 'saga'; runtime?: string; saga: string; item: SagaInfo; diagram?: string; states: string[] };

/** What a task list asks for (`queue.list` options as the page sends them). */
export interface TaskListRequest {
  runtime?: string;
  queue: string;
  query: Record<string, unknown>;
}

/** What a saga list asks for (`saga.list` options). */
export interface SagaListRequest {
  runtime?: string;
  saga: string;
  query: Record<string, unknown>;
}

/** The console's read-only lists and detail views (`GET /ops/tasks`, `/ops/task`, `/ops/sagas`, `/ops/saga`). */
export interface OpsBrowse {
  tasks(request: TaskListRequest): Promise<OpsPage<OpsTaskRow>>;
  /** Undefined when the queue has no task `id` (unknown, or pruned by its retention). */
  task(runtime: string | undefined, queue: string, id: string): Promise<OpsDetail | undefined>;
  sagas(request: SagaListRequest): Promise<OpsPage<OpsSagaRow>>;
  saga(runtime: string | undefined, saga: string, id: string): Promise<OpsDetail | undefined>;
}

/** Every operator action, by name. */
export const ACTION_NAMES = [
  'queue.redrive',
  'queue.deleteDead',
  'queue.cancel',
  'queue.pause',
  'queue.resume',
  'saga.cancel',
  'saga.signal',
  'breaker.isolate',
  'breaker.reset',
] as const;

/** The name of an operator action. */
export type ActionName = (typeof ACTION_NAMES)[number];

/** One operator action, as the page posts it to `/actions`. */
export type ActionRequest =
  | { action: 'queue.redrive' | 'queue.deleteDead'; runtime?: string; queue: string; ids: string[] }
  | { action: 'queue.cancel'; runtime?: string; queue: string; id: string }
  | { action: 'queue.pause' | 'queue.resume'; runtime?: string; queue: string }
  | { action: 'saga.cancel'; runtime?: string; saga: string; id: string; reason?: string }
  | { action: 'saga.signal'; runtime?: string; saga: string; id: string; signal: string; payload?: unknown }
  | { action: 'breaker.isolate' | 'breaker.reset'; runtime?: string; breaker: string };

/** Where the console's operations come from, and who performs its actions. */
export interface OpsSource {
  snapshot(): Promise<OpsSnapshot>;
  /** Performs a checked action; throws `ActionError` (or a `KeelError`) when it cannot. */
  act(request: ActionRequest): Promise<unknown>;
  /** The lists and detail views; without it the console shows only the snapshot. */
  browse?: OpsBrowse;
}

/** Dead tasks listed per queue. */
export const DEAD_SHOWN = 50;
/** Unfinished sagas listed. */
export const SAGAS_SHOWN = 100;
/** Characters of a dead task's payload shown. */
export const PAYLOAD_SHOWN = 300;

/** A refused or failed action, with the HTTP status it is answered with. */
export class ActionError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ActionError';
  }
}

/** A payload cut for display. */
export function shownPayload(text: string): string {
  return text.length <= PAYLOAD_SHOWN ? text : `${text.slice(0, PAYLOAD_SHOWN)}…`;
}

/** A stored dead task as the console lists it (a runtime's viewer and the fleet console alike). */
export function deadTaskView(r: TaskRecord): OpsDeadTask {
  return {
    id: r.id,
    attempt: r.attempt,
    ...(r.key !== undefined && { key: r.key }),
    ...(r.lastError !== undefined && { error: r.lastError }),
    payload: shownPayload(r.payload),
    diedAt: r.updatedAt,
  };
}

/** The leaf paths of a stored machine state (JSON text of its value), joined: `{"running":"charge"}` → `running.charge`. */
export function stateText(json: string): string {
  const leaves = (v: unknown, prefix: string): string[] =>
    typeof v === 'string'
      ? [prefix + v]
      : typeof v === 'object' && v !== null
        ? Object.entries(v).flatMap(([k, x]) => leaves(x, `${prefix}${k}.`))
        : [];
  try {
    return leaves(JSON.parse(json), '').join(', ');
  } catch {
    return json;
  }
}

const text = (v: unknown): v is string => typeof v === 'string' && v !== '' && v.length <= 1000;

/** Checks the JSON body of `/actions`: an `ActionRequest`, or an `ActionError` 400 naming what is wrong. */
export function parseAction(body: unknown): ActionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ActionError(400, 'the body must be a JSON object like {"action":"queue.pause","queue":"emails"}');
  }
  const b = body as Record<string, unknown>;
  const action = b.action as ActionName;
  if (!ACTION_NAMES.includes(action)) {
    throw new ActionError(400, `unknown action ${JSON.stringify(b.action)} (actions: ${ACTION_NAMES.join(', ')})`);
  }
  const need = (field: string) => {
    if (!text(b[field])) throw new ActionError(400, `${action}: '${field}' must be a non-empty string`);
    return b[field] as string;
  };
  if (b.runtime !== undefined) need('runtime');
  const runtime = b.runtime === undefined ? {} : { runtime: b.runtime as string };
  const [kind] = action.split('.');
  if (kind === 'queue') {
    const queue = need('queue');
    if (action === 'queue.redrive' || action === 'queue.deleteDead') {
      const ids = b.ids;
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > 1000 || !ids.every(text)) {
        throw new ActionError(400, `${action}: 'ids' must be a list of 1 to 1000 task ids`);
      }
      return { action, queue, ids: ids as string[], ...runtime };
    }
    if (action === 'queue.cancel') return { action, queue, id: need('id'), ...runtime };
    return { action: action as 'queue.pause' | 'queue.resume', queue, ...runtime };
  }
  if (kind === 'saga') {
    const saga = need('saga');
    const id = need('id');
    if (action === 'saga.cancel') {
      if (b.reason !== undefined) need('reason');
      return { action, saga, id, ...(b.reason !== undefined && { reason: b.reason as string }), ...runtime };
    }
    return { action: 'saga.signal', saga, id, signal: need('signal'), payload: b.payload, ...runtime };
  }
  return { action: action as 'breaker.isolate' | 'breaker.reset', breaker: need('breaker'), ...runtime };
}
