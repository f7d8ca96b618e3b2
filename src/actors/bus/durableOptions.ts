import { invalidOptions } from '../../core/errors.js';
import { describeValue, OptionReader } from '../../core/options.js';
import { parseRetry, type RetryOptions } from '../../core/retry.js';

/** Options of a durable `rt.bus.subscribe(topic, handler, { durable, ... })` (issue #16.5). */
export interface DurableSubscribeOptions {
  /**
   * The subscription's name, shared by every process that subscribes with it:
   * each matching event is handled once per name (at least once). Letters,
   * digits, `_` and `-`, at most 100 characters.
   */
  durable: string;
  /** Retries of a failing handler (the task queue's `retry`); attempts exhausted = dead letter. */
  retry?: RetryOptions;
  /** While the breaker with this name is open, events wait for it instead of spending attempts. */
  breaker?: string;
  /** Events this process handles at once; default 1 (publish order). */
  concurrency?: number;
  /** A delivery whose process vanished is handed out again after this (the queue's `leaseMs`); default 30,000. */
  leaseMs?: number;
  /**
   * Where a subscription that does not exist yet starts: `'now'` (default) or
   * `'earliest'`, every logged event within the bus retention that matches. An
   * existing subscription carries on where it is.
   */
  from?: 'now' | 'earliest';
  /**
   * Groups each delivery by a field of the event's payload, as `enqueue(payload,
   * { group })` does, so `groupConcurrency` applies per entity (a user, a
   * tenant). A dot path of property names into the payload, e.g. `'userId'`
   * or `'customer.id'`; the value must be a non-empty string or a safe
   * integer, otherwise that event is delivered without a group. It is a path,
   * not a function, because it is stored with the subscription: every
   * publishing process (and `publish(..., { tx })` inside SQL) groups with it.
   */
  groupBy?: string;
  /**
   * Deliveries of one group running at once across every process sharing the
   * store; needs `groupBy`. `1` delivers each entity's events one after
   * another in publish order, through retries and breaker waits, while
   * different entities run in parallel (up to `concurrency` per process).
   */
  groupConcurrency?: number;
}

/** Options of the runtime's bus (`createRuntime({ bus })`). */
export interface BusOptions {
  /** How long recorded events stay in the event log that `from: 'earliest'` replays; default 7 days. */
  retentionMs?: number;
  /**
   * How often a runtime re-reads the durable subscriptions other processes made
   * (a publisher records for them from then on); default 1000.
   */
  refreshMs?: number;
}

/** The bus options, checked, defaults filled in. */
export interface ResolvedBusOptions {
  retentionMs: number;
  refreshMs: number;
}

/** Seven days, as Kafka keeps a topic by default. */
export const DEFAULT_BUS_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

const DURABLE_NAME = /^[A-Za-z0-9_-]{1,100}$/;
const SUBSCRIBE_OPTIONS = [
  'durable',
  'retry',
  'breaker',
  'concurrency',
  'from',
  'leaseMs',
  'groupBy',
  'groupConcurrency',
];

/** Property names joined by dots: no empty step, so `a..b` and `.a` are refused. */
const GROUP_PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;
const GROUP_PATH_MAX = 200;

/** Checks durable subscribe options; bad input throws `INVALID_OPTIONS` naming the option and value. */
export function checkDurableOptions(
  topic: string,
  options: unknown,
): Required<Pick<DurableSubscribeOptions, 'durable' | 'from'>> &
  Pick<DurableSubscribeOptions, 'retry' | 'breaker' | 'concurrency' | 'leaseMs' | 'groupBy' | 'groupConcurrency'> {
  const owner = `bus.subscribe('${topic}')`;
  const o = new OptionReader(owner, options, SUBSCRIBE_OPTIONS, 'a subscribe option');
  const durable = o.values.durable;
  if (typeof durable !== 'string' || !DURABLE_NAME.test(durable)) {
    throw invalidOptions(
      owner,
      'durable',
      `must be a name of 1 to 100 letters, digits, '_' or '-', got ${describeValue(durable)}`,
    );
  }
  const from = o.values.from ?? 'now';
  if (from !== 'now' && from !== 'earliest') {
    throw invalidOptions(owner, 'from', `must be 'now' or 'earliest', got ${describeValue(from)}`);
  }
  const concurrency = o.values.concurrency === undefined ? undefined : o.int('concurrency', 1, 1);
  const breaker = o.string('breaker', 'the name of a breaker');
  const leaseMs = o.values.leaseMs === undefined ? undefined : o.duration('leaseMs', 30_000, 1);
  const groupBy = o.values.groupBy;
  if (
    groupBy !== undefined &&
    (typeof groupBy !== 'string' || groupBy.length > GROUP_PATH_MAX || !GROUP_PATH.test(groupBy))
  ) {
    throw invalidOptions(
      owner,
      'groupBy',
      `must be a dot path of property names into the payload, like 'userId' or 'customer.id', got ${describeValue(groupBy)}`,
    );
  }
  const groupConcurrency = o.values.groupConcurrency === undefined ? undefined : o.int('groupConcurrency', 1, 1);
  if (groupConcurrency !== undefined && groupBy === undefined) {
    throw invalidOptions(owner, 'groupConcurrency', 'needs groupBy: without it no delivery has a group');
  }
  const retry = o.values.retry as RetryOptions | undefined;
  // Checked here so the message names the subscription; the queue checks it again.
  if (retry !== undefined) parseRetry(owner, 'retry', retry);
  return {
    durable,
    from,
    ...(retry !== undefined && { retry }),
    ...(breaker !== undefined && { breaker }),
    ...(concurrency !== undefined && { concurrency }),
    ...(leaseMs !== undefined && { leaseMs }),
    ...(groupBy !== undefined && { groupBy }),
    ...(groupConcurrency !== undefined && { groupConcurrency }),
  };
}

/** Checks `createRuntime({ bus })`; bad input throws `INVALID_OPTIONS` naming the option. */
export function resolveBusOptions(options: unknown): ResolvedBusOptions {
  if (options === undefined) return { retentionMs: DEFAULT_BUS_RETENTION_MS, refreshMs: 1000 };
  const o = new OptionReader('createRuntime({ bus })', options, ['retentionMs', 'refreshMs'], 'a bus option', 'bus');
  return {
    retentionMs: o.int('retentionMs', DEFAULT_BUS_RETENTION_MS, 0),
    refreshMs: o.duration('refreshMs', 1000, 1),
  };
}
