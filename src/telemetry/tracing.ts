import type * as Otel from '@opentelemetry/api';
import type { AttemptOutcome, AttemptScope, SagaStepInfo, TaskAttemptInfo } from '../core/telemetry.js';

/** Enqueue contexts kept for tasks not finished yet; beyond, the oldest go (tasks another process finished). */
const MAX_CARRIED = 10_000;

/**
 * Task spans through `@opentelemetry/api`: one CONSUMER span per attempt,
 * whose parent is the trace context that was active when the task was
 * enqueued in this process (none: a new trace). Without an SDK the API hands
 * out non-recording spans and this costs next to nothing.
 */
export class TaskTracing {
  private readonly tracer: Otel.Tracer;
  /** `<queue>\0<id>` → the context of its enqueue, until the task succeeds or dies. */
  private readonly carried = new Map<string, Otel.Context>();

  constructor(private readonly api: typeof Otel) {
    // A proxy: an SDK registered later (or never) is the one that records.
    this.tracer = api.trace.getTracer('keel');
  }

  /** In the enqueue's async context: the context to carry, if it holds a span. */
  enqueueing(queue: string): ((id: string) => void) | undefined {
    const ctx = this.api.context.active();
    if (this.api.trace.getSpanContext(ctx) === undefined) return undefined;
    return (id) => {
      const { carried } = this;
      carried.set(`${queue}\0${id}`, ctx);
      if (carried.size > MAX_CARRIED) carried.delete(carried.keys().next().value as string);
    };
  }

  /**
   * One attempt of a saga step or compensation in a span of its own. Its parent
   * is the active context: the saga runs in the async context of its `execute`
   * (a saga resumed at `rt.start()`, in that of the start).
   */
  sagaStep<T>(info: SagaStepInfo, run: () => T | PromiseLike<T>): Promise<T> {
    const { api } = this;
    const name = `${info.saga} ${info.compensation ? 'compensate' : 'step'} ${info.step}`;
    const attributes = {
      'keel.saga.name': info.saga,
      'keel.saga.id': info.sagaId,
      'keel.saga.step': info.step,
      'keel.saga.compensation': info.compensation,
      'keel.saga.attempt': info.attempt,
    };
    return this.tracer.startActiveSpan(name, { attributes }, async (span) => {
      try {
        return await run();
      } catch (error) {
        failed(api, span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** An attempt's span, its parent the enqueue's context; the handler runs inside it. */
  attempt(info: TaskAttemptInfo): AttemptScope {
    const { api } = this;
    const key = this.carried.size > 0 ? `${info.queue}\0${info.id}` : undefined;
    const parent = (key !== undefined ? this.carried.get(key) : undefined) ?? api.ROOT_CONTEXT;
    const span = this.tracer.startSpan(
      `${info.queue} process`,
      {
        kind: api.SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'keel',
          'messaging.operation.type': 'process',
          'messaging.destination.name': info.queue,
          'messaging.message.id': info.id,
          'keel.task.attempt': info.attempt,
        },
      },
      parent,
    );
    // Non-recording and nothing to carry: entering a context would only cost (no SDK installed).
    const ctx = span.isRecording() || parent !== api.ROOT_CONTEXT ? api.trace.setSpan(parent, span) : undefined;
    return new TaskSpan(api, this.carried, key, span, ctx);
  }
}

/**
 * One attempt's span. A class, not an object of arrow functions: its methods
 * are made once, and nothing per attempt is named or bound.
 */
class TaskSpan implements AttemptScope {
  constructor(
    private readonly api: typeof Otel,
    private readonly carried: Map<string, Otel.Context>,
    private readonly key: string | undefined,
    private readonly span: Otel.Span,
    /** The context the handler runs in; undefined: no SDK records and nothing was carried, so none is entered. */
    private readonly ctx: Otel.Context | undefined,
  ) {}

  run<T>(fn: () => T): T {
    return this.ctx === undefined ? fn() : this.api.context.with(this.ctx, fn);
  }

  end(outcome: AttemptOutcome, _ms: number, error?: unknown): void {
    if (this.key !== undefined && (outcome === 'succeeded' || outcome === 'dead')) this.carried.delete(this.key);
    this.span.setAttribute('keel.task.outcome', outcome);
    if (error !== undefined) failed(this.api, this.span, error);
    this.span.end();
  }
}

/** Marks a span failed with what was thrown (an `exception` event when it is an Error). */
function failed(api: typeof Otel, span: Otel.Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}
