/**
 * The hooks through which patterns report what metrics and traces need and the
 * bus does not carry (timings, the trace context of an enqueue). Interfaces only:
 * `src/telemetry` implements them and the runtime hands them to patterns through
 * `Host.observe`. Every hook is optional and called only when set, so a runtime
 * without telemetry pays one `undefined` check per call and allocates nothing.
 */

/** A task attempt about to run. */
export interface TaskAttemptInfo {
  readonly queue: string;
  readonly id: string;
  /** 1 on the first run. */
  readonly attempt: number;
  /** Milliseconds from when the task fell due (enqueue, delay or backoff end) to this start; undefined when the store does not say. */
  readonly waitedMs: number | undefined;
  /** The trace context stored with the task at its enqueue (a W3C carrier as JSON), perhaps by another process. */
  readonly trace?: string | undefined;
}

/** How an attempt ended, as the task's next state: `released` went back to pending without spending the attempt. */
export type AttemptOutcome = 'succeeded' | 'retrying' | 'dead' | 'released';

/** One running task attempt, as the telemetry layer follows it. */
export interface AttemptScope {
  /** Runs the handler inside the attempt's trace context (its span is the parent of the handler's spans). */
  run<T>(fn: () => T): T;
  /** The attempt ended after `ms`; `error` is what the handler threw, if it failed. */
  end(outcome: AttemptOutcome, ms: number, error?: unknown): void;
}

/** How a guarded breaker call ended: `ignored` threw an error `isFailure` does not count. */
export type BreakerCallOutcome = 'success' | 'failure' | 'timeout' | 'ignored';

/** Why a breaker refused a call. */
export type BreakerRefusal = 'open' | 'halfOpen' | 'isolated' | 'bulkhead';

/** A saga step (or its compensation) about to make one attempt. */
export interface SagaStepInfo {
  readonly saga: string;
  readonly sagaId: string;
  readonly step: string;
  /** True for the compensation of `step`. */
  readonly compensation: boolean;
  /** 1 on the first try. */
  readonly attempt: number;
  /** The trace context stored with the saga at its `execute` (a W3C carrier as JSON), perhaps by another process. */
  readonly trace?: string | undefined;
}

/** What patterns report to the telemetry layer. */
export interface TelemetryHooks {
  /**
   * Called in `enqueue` and `execute`, in the caller's async context: the
   * active trace context as text (a W3C `traceparent` carrier as JSON), or
   * undefined when no span is active. The store keeps it with the task or saga,
   * so the attempts' spans have the caller's span as parent in any process.
   */
  traceContext?(): string | undefined;
  /** An attempt starts; the scope returned (if any) wraps the handler and hears how it ended. */
  taskAttempt?(info: TaskAttemptInfo): AttemptScope | undefined;
  /** Runs one attempt of a saga step or compensation (`run`) inside its span; settles as `run` does. */
  sagaStep?<T>(info: SagaStepInfo, run: () => T | PromiseLike<T>): Promise<T>;
  /** A call admitted by breaker `breaker` ended after `ms`. */
  breakerCall?(breaker: string, ms: number, outcome: BreakerCallOutcome): void;
  /** Breaker `breaker` refused a call. */
  breakerRefused?(breaker: string, why: BreakerRefusal): void;
}

/** A Prometheus text exposition, as the viewer's and the metrics server's `/metrics` route serves it. */
export interface MetricsSource {
  /** The response's `content-type` (the Prometheus text format version). */
  readonly contentType: string;
  /** The current values of every metric, in the Prometheus text format. */
  scrape(): Promise<string>;
}
