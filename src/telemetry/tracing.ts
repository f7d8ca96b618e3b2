import type * as Otel from '@opentelemetry/api';
import type { AttemptOutcome, AttemptScope, SagaStepInfo, TaskAttemptInfo } from '../core/telemetry.js';
import { extractTrace, injectTrace } from './traceContext.js';

/**
 * Task and saga spans through `@opentelemetry/api`: one CONSUMER span per task
 * attempt and one span per saga step attempt. Their parent is the span that was
 * active at the `enqueue` / `execute`, whose context the store keeps with the
 * task or saga (`traceContext`), so the link holds in whichever process claims
 * the task or resumes the saga. Without an SDK the API hands out non-recording
 * spans and this costs next to nothing.
 */
export class TaskTracing {
  private readonly tracer: Otel.Tracer;

  constructor(private readonly api: typeof Otel) {
    // A proxy: an SDK registered later (or never) is the one that records.
    this.tracer = api.trace.getTracer('keel');
  }

  /**
   * True while no SDK is registered (the global provider is the API's proxy
   * with no delegate): then a span could neither record nor carry anything new,
   * and an attempt or step with no stored parent skips the span altogether.
   * Asked per span, so an SDK registered later is used from its first span on.
   */
  private noSdk(): boolean {
    const provider = this.api.trace.getTracerProvider();
    return provider instanceof this.api.ProxyTracerProvider && provider.getDelegateTracer('keel') === undefined;
  }

  /** In the caller's async context: its trace context as text for the store, or undefined when no span is active. */
  traceContext(): string | undefined {
    return injectTrace(this.api, this.api.context.active());
  }

  /**
   * One attempt of a saga step or compensation in a span of its own. Its parent
   * is the context stored with the saga at its `execute` (also when another
   * process resumes it); a saga stored without one (its execute ran outside any
   * span) takes the active context, that of its `execute` or of `rt.start()`.
   */
  sagaStep<T>(info: SagaStepInfo, run: () => T | PromiseLike<T>): Promise<T> {
    const { api } = this;
    if (info.trace === undefined && this.noSdk()) return (async () => run())();
    const parent = (info.trace !== undefined ? extractTrace(api, info.trace) : undefined) ?? api.context.active();
    const name = `${info.saga} ${info.compensation ? 'compensate' : 'step'} ${info.step}`;
    const attributes = {
      'keel.saga.name': info.saga,
      'keel.saga.id': info.sagaId,
      'keel.saga.step': info.step,
      'keel.saga.compensation': info.compensation,
      'keel.saga.attempt': info.attempt,
    };
    return this.tracer.startActiveSpan(name, { attributes }, parent, async (span) => {
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

  /**
   * An attempt's span, its parent the enqueue's context as stored with the task
   * (none: a new trace, never the context the workers happen to run in); the
   * handler runs inside it.
   */
  attempt(info: TaskAttemptInfo): AttemptScope {
    const { api } = this;
    if (info.trace === undefined && this.noSdk()) return NO_SPAN;
    const parent = (info.trace !== undefined ? extractTrace(api, info.trace) : undefined) ?? api.ROOT_CONTEXT;
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
    return new TaskSpan(api, span, ctx);
  }
}

/**
 * One attempt's span. A class, not an object of arrow functions: its methods
 * are made once, and nothing per attempt is named or bound.
 */
class TaskSpan implements AttemptScope {
  constructor(
    private readonly api: typeof Otel,
    private readonly span: Otel.Span,
    /** The context the handler runs in; undefined: no SDK records and nothing was carried, so none is entered. */
    private readonly ctx: Otel.Context | undefined,
  ) {}

  run<T>(fn: () => T): T {
    return this.ctx === undefined ? fn() : this.api.context.with(this.ctx, fn);
  }

  end(outcome: AttemptOutcome, _ms: number, error?: unknown): void {
    this.span.setAttribute('keel.task.outcome', outcome);
    if (error !== undefined) failed(this.api, this.span, error);
    this.span.end();
  }
}

/** An attempt with no SDK and no stored parent: the handler runs as it is. */
const NO_SPAN: AttemptScope = {
  run: (fn) => fn(),
  end: () => {},
};

/** Marks a span failed with what was thrown (an `exception` event when it is an Error). */
function failed(api: typeof Otel, span: Otel.Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}
