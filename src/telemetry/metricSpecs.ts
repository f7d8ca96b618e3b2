import type * as Prom from 'prom-client';

/**
 * The metrics of a runtime as one table: name, help and labels per metric,
 * and for a gauge what it reads at scrape time. `makeMetrics` registers them.
 */

/** Seconds: a handler or a call of 1 ms up to a saga or a backlog of an hour. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

const BREAKER_STATES = ['closed', 'open', 'halfOpen', 'isolated'] as const;

/** Label values and the value a gauge reports at scrape time. */
export type GaugeValues = Array<[Record<string, string>, number]>;

/** What the gauges read at scrape time. */
export interface GaugeSources {
  queueStats(): Promise<Array<[string, Record<string, number>]>>;
  breakerStates(): Array<[string, string]>;
}

interface Common {
  name: string;
  help: string;
  labelNames: string[];
}
type Spec =
  | (Common & { kind: 'counter' })
  | (Common & { kind: 'histogram' })
  | (Common & { kind: 'gauge'; values: (from: GaugeSources) => GaugeValues | Promise<GaugeValues> });

const counter = (name: string, help: string, labelNames: string[]) =>
  ({ kind: 'counter', name, help, labelNames }) as const;
/** Every histogram measures seconds in `DURATION_BUCKETS`. */
const histogram = (name: string, help: string, labelNames: string[]) =>
  ({ kind: 'histogram', name, help, labelNames }) as const;
const gauge = (name: string, help: string, labelNames: string[], values: Extract<Spec, { kind: 'gauge' }>['values']) =>
  ({ kind: 'gauge', name, help, labelNames, values }) as const;

/** Every metric of a runtime, in the order a scrape lists them. */
export const METRICS = {
  tasks: counter(
    'keel_tasks_total',
    'Task outcomes stored, by queue: succeeded, retried (an attempt failed, another follows), dead, cancelled.',
    ['queue', 'outcome'],
  ),
  taskRun: histogram(
    'keel_task_run_seconds',
    "Run time of a task attempt's handler, by queue and what the attempt led to.",
    ['queue', 'outcome'],
  ),
  taskWait: histogram(
    'keel_task_wait_seconds',
    'Time from when a task fell due (enqueued, delay or backoff over) to the start of its attempt.',
    ['queue'],
  ),
  taskStates: gauge(
    'keel_tasks',
    'Tasks by queue and state, as the store counts them at scrape time.',
    ['queue', 'state'],
    async (from) =>
      (await from.queueStats()).flatMap(([queue, stats]) =>
        Object.entries(stats).map(([state, n]): GaugeValues[number] => [{ queue, state }, n]),
      ),
  ),
  sagas: counter(
    'keel_sagas_total',
    'Saga runs by saga and outcome: started, completed, compensated, failed, cancelled.',
    ['saga', 'outcome'],
  ),
  sagaDuration: histogram(
    'keel_saga_duration_seconds',
    'Time from the start of a saga run seen by this process to its end, by saga and outcome.',
    ['saga', 'outcome'],
  ),
  breakerTransitions: counter(
    'keel_breaker_transitions_total',
    'Circuit breaker state changes, by breaker and the state entered (open, halfOpen, closed, isolated).',
    ['breaker', 'state'],
  ),
  breakerRefusals: counter(
    'keel_breaker_refusals_total',
    'Calls a breaker refused, by breaker and why: open, halfOpen (no trial slot), isolated, bulkhead (full).',
    ['breaker', 'reason'],
  ),
  breakerCalls: histogram(
    'keel_breaker_call_seconds',
    'Latency of calls a breaker admitted, by breaker and outcome: success, failure, timeout, ignored.',
    ['breaker', 'outcome'],
  ),
  breakerState: gauge(
    'keel_breaker_state',
    'Circuit breaker state at scrape time: 1 for the current state of each breaker, 0 for the others.',
    ['breaker', 'state'],
    (from) =>
      from
        .breakerStates()
        .flatMap(([breaker, current]) =>
          BREAKER_STATES.map((state): GaugeValues[number] => [{ breaker, state }, state === current ? 1 : 0]),
        ),
  ),
} satisfies Record<string, Spec>;

/** The prom-client object each kind of spec makes. */
export type Made<T extends Record<string, Spec>> = {
  [K in keyof T]: T[K] extends { kind: 'counter' }
    ? Prom.Counter
    : T[K] extends { kind: 'histogram' }
      ? Prom.Histogram
      : Prom.Gauge;
};

/** Registers every metric of `specs` in `registry`; gauges read `from` at each scrape. */
export function makeMetrics<T extends Record<string, Spec>>(
  client: typeof Prom,
  registry: Prom.Registry,
  specs: T,
  from: GaugeSources,
): Made<T> {
  const registers = [registry];
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const { name, help, labelNames } = spec;
    if (spec.kind === 'counter') out[key] = new client.Counter({ name, help, labelNames, registers });
    else if (spec.kind === 'histogram') {
      out[key] = new client.Histogram({ name, help, labelNames, buckets: DURATION_BUCKETS, registers });
    } else {
      out[key] = new client.Gauge({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const values = await spec.values(from);
          this.reset();
          for (const [labels, n] of values) this.set(labels, n);
        },
      });
    }
  }
  return out as Made<T>;
}
