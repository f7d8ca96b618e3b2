import { invalidOptions } from '../../core/errors.js';
import { decodeOrText } from '../../core/json.js';
import { describeValue, OptionReader } from '../../core/options.js';
import type { TaskOrder, TaskQuery, TaskRecord, TaskState } from '../../stores/store.js';

/** One task as `queue.get` and `queue.list` show it: payload, result and progress decoded. */
export interface TaskInfo<P = any> {
  id: string;
  /** At the time of the read: a retrying task whose backoff has passed reads as pending. */
  state: TaskState;
  payload: P;
  /**
   * succeeded: what the handler returned (plain JSON; absent when it returned
   * nothing or a value JSON cannot carry). Over 64 KiB of JSON it is
   * `{ 'keel.truncated': true, bytes }` instead.
   */
  result?: unknown;
  /** What the last failed attempt threw (retrying, dead; kept when a later attempt succeeded). */
  error?: string;
  attempt: number;
  /** The latest `task.progress(value)`. */
  progress?: unknown;
  group?: string;
  key?: string;
  priority?: number;
  /** When it was enqueued (epoch ms of the runtime's clock). */
  createdAt: number;
  /** When its first attempt was claimed. */
  startedAt?: number;
  /** succeeded, dead, cancelled: when it ended. */
  finishedAt?: number;
}

/** A record as the public view. */
export function taskInfo(r: TaskRecord): TaskInfo {
  return {
    id: r.id,
    state: r.state,
    payload: decodeOrText(r.payload),
    ...(r.result !== undefined && { result: decodeOrText(r.result) }),
    ...(r.lastError !== undefined && { error: r.lastError }),
    attempt: r.attempt,
    ...(r.progress !== undefined && { progress: decodeOrText(r.progress) }),
    ...(r.group !== undefined && { group: r.group }),
    ...(r.key !== undefined && { key: r.key }),
    ...(r.priority !== undefined && { priority: r.priority }),
    createdAt: r.createdAt,
    ...(r.startedAt !== undefined && { startedAt: r.startedAt }),
    ...(r.finishedAt !== undefined && { finishedAt: r.finishedAt }),
  };
}

/** What `queue.list` filters on. */
export interface ListQuery {
  state?: TaskState;
  group?: string;
  key?: string;
  /** Page size, 1..1000; default 100. */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
  /** `oldest` (default): in enqueue order; `newest`: the latest enqueued first. */
  order?: TaskOrder;
}

const ORDERS: readonly TaskOrder[] = ['oldest', 'newest'];
const STATES: readonly TaskState[] = ['pending', 'active', 'retrying', 'succeeded', 'dead', 'cancelled'];
/** The largest page `list` returns. */
export const MAX_PAGE = 1000;

/** Checks `queue.list` options; bad input throws `INVALID_OPTIONS` naming the option and value. */
export function checkListQuery(queue: string, query: ListQuery): TaskQuery {
  const owner = `queue('${queue}').list`;
  const o = new OptionReader(owner, query, ['state', 'group', 'key', 'limit', 'after', 'order'], 'a list option');
  const state = o.values.state;
  if (state !== undefined && !STATES.includes(state as TaskState)) {
    throw invalidOptions(owner, 'state', `must be one of ${STATES.join(', ')}, got ${describeValue(state)}`);
  }
  const order = o.values.order;
  if (order !== undefined && !ORDERS.includes(order as TaskOrder)) {
    throw invalidOptions(owner, 'order', `must be one of ${ORDERS.join(', ')}, got ${describeValue(order)}`);
  }
  const limit = o.int('limit', 100, 1);
  if (limit > MAX_PAGE) throw invalidOptions(owner, 'limit', `must be at most ${MAX_PAGE}, got ${limit}`);
  const after = o.string('after', 'the next of a previous page');
  if (after !== undefined && !/^[0-9]{1,16}$/.test(after)) {
    throw invalidOptions(
      owner,
      'after',
      `must be the next of a previous page (a task id), got ${describeValue(after)}`,
    );
  }
  const group = o.string('group');
  const key = o.string('key');
  return {
    limit,
    ...(state !== undefined && { state: state as TaskState }),
    ...(group !== undefined && { group }),
    ...(key !== undefined && { key }),
    ...(after !== undefined && { after }),
    ...(order === 'newest' && { order: 'newest' as const }),
  };
}
