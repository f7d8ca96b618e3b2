import { invalidOptions } from '../../core/errors.js';
import { describeValue, OptionReader } from '../../core/options.js';
import type { SagaContext } from '../../machines/saga.js';
import type { SagaListQuery, SagaOrder, SagaRecord, SagaRecordStatus } from '../../stores/sagaStore.js';
import { parseHistory, type SagaHistoryEntry, stateName } from './history.js';

/** What `saga.get` and `saga.list` tell of one saga run, from its stored record. */
export interface SagaInfo {
  id: string;
  status: SagaRecordStatus;
  /** Where it is (or ended), as a dotted state path: `running.createOrder`, `compensated`. */
  state: string;
  input: unknown;
  /** What each completed step returned, by step name. */
  results: Record<string, unknown>;
  /** Why it compensated, failed or was cancelled: the failing step's error (`{ name, message, code? }`). */
  error?: unknown;
  /** The step that failed (or was running when a cancel came). */
  failedStep?: string;
  /** The steps undone so far, in the order they were undone. */
  compensated?: string[];
  /** Why a compensation kept failing (status `failed`). */
  compensationError?: unknown;
  /** The reason given to `cancel`. */
  reason?: string;
  /** The definition version it runs on. */
  version: string;
  createdAt: number;
  updatedAt: number;
  /** Every state it went through, oldest first (at most `MAX_HISTORY`: the first and the newest). */
  history: SagaHistoryEntry[];
}

/** Options of `saga.list`. */
export interface SagaListOptions {
  /** Only runs with this status. */
  status?: SagaRecordStatus;
  /** At most this many items (1 to 1,000; default 100). */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
  /** `newest` (default): the latest started first; `oldest`: in the order they started. */
  order?: SagaOrder;
}

/** One page of `saga.list`: newest first unless `order: 'oldest'`; `next` is the `after` of the next page, absent on the last. */
export interface SagaPage {
  items: SagaInfo[];
  next?: string;
}

const STATUSES: readonly SagaRecordStatus[] = [
  'running',
  'compensating',
  'completed',
  'compensated',
  'failed',
  'cancelled',
];
const ORDERS: readonly SagaOrder[] = ['newest', 'oldest'];
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** The stored record as `saga.get` shows it. */
export function sagaInfo(record: SagaRecord): SagaInfo {
  const c = JSON.parse(record.context) as SagaContext;
  const info: SagaInfo = {
    id: record.id,
    status: record.status,
    state: stateName(JSON.parse(record.state)),
    input: c.input,
    results: c.results ?? {},
    version: record.version,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    history: parseHistory(record.history),
  };
  if (c.error !== undefined && c.error !== null) info.error = c.error;
  if (c.failedStep !== undefined && c.failedStep !== null) info.failedStep = c.failedStep;
  if (c.compensated?.length) info.compensated = c.compensated;
  if (c.compensationError !== undefined && c.compensationError !== null) info.compensationError = c.compensationError;
  if (typeof c.reason === 'string') info.reason = c.reason;
  return info;
}

/** Reads `saga.list` options into a store query; `INVALID_OPTIONS` names a bad option and its value. */
export function listQuery(what: string, options: unknown): SagaListQuery {
  const o = new OptionReader(
    what,
    options === undefined ? {} : options,
    ['status', 'limit', 'after', 'order'],
    'a list option',
  );
  const raw = o.values as { status?: unknown; limit?: unknown; after?: unknown; order?: unknown };
  const query: SagaListQuery = { limit: DEFAULT_LIMIT };
  if (raw.status !== undefined) {
    if (!STATUSES.includes(raw.status as SagaRecordStatus)) {
      throw invalidOptions(what, 'status', `must be one of ${STATUSES.join(', ')}, got ${describeValue(raw.status)}`);
    }
    query.status = raw.status as SagaRecordStatus;
  }
  if (raw.limit !== undefined) {
    if (typeof raw.limit !== 'number' || !Number.isInteger(raw.limit) || raw.limit < 1 || raw.limit > MAX_LIMIT) {
      throw invalidOptions(what, 'limit', `must be an integer from 1 to ${MAX_LIMIT}, got ${describeValue(raw.limit)}`);
    }
    query.limit = raw.limit;
  }
  if (raw.order !== undefined) {
    if (!ORDERS.includes(raw.order as SagaOrder)) {
      throw invalidOptions(what, 'order', `must be one of ${ORDERS.join(', ')}, got ${describeValue(raw.order)}`);
    }
    if (raw.order === 'oldest') query.order = 'oldest';
  }
  if (raw.after !== undefined) query.after = decodeCursor(what, raw.after);
  return query;
}

/** The page's `next`: where the page after the last item starts. */
export function encodeCursor(record: { createdAt: number; id: string }): string {
  return Buffer.from(JSON.stringify([record.createdAt, record.id])).toString('base64url');
}

function decodeCursor(what: string, after: unknown): { createdAt: number; id: string } {
  const bad = () => invalidOptions(what, 'after', `must be the next of an earlier page, got ${describeValue(after)}`);
  if (typeof after !== 'string' || after === '') throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(after, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== 'number' ||
    !Number.isFinite(parsed[0]) ||
    typeof parsed[1] !== 'string'
  ) {
    throw bad();
  }
  return { createdAt: parsed[0], id: parsed[1] };
}
