import type * as Otel from '@opentelemetry/api';

/**
 * The trace context a task or saga carries through the store, as text: a W3C
 * Trace Context carrier (`traceparent`, `tracestate`, and whatever else the
 * registered propagator writes, such as `baggage`) encoded as JSON.
 *
 * Written with the global propagator (`propagation.inject`), so an app's own
 * propagator setup carries over. Without one (the API alone registers none, and
 * a bare `BasicTracerProvider` does not either) the `traceparent` is written
 * here, so the parent link survives the process boundary whatever the setup.
 */

/** `version-traceId-spanId-flags`, as W3C Trace Context level 1 defines it (version 00). */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The active context as carrier text; undefined when no valid span is active (nothing to carry). */
export function injectTrace(api: typeof Otel, ctx: Otel.Context): string | undefined {
  const span = api.trace.getSpanContext(ctx);
  if (span === undefined || !api.isSpanContextValid(span)) return undefined;
  const carrier: Record<string, string> = {};
  api.propagation.inject(ctx, carrier);
  if (carrier.traceparent === undefined) {
    carrier.traceparent = `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    const state = span.traceState?.serialize();
    if (state) carrier.tracestate = state;
  }
  return JSON.stringify(carrier);
}

/**
 * The context that `text` (from `injectTrace`, perhaps in another process)
 * describes, on top of ROOT; undefined when it holds no valid span context
 * (text from an older or foreign writer is ignored, never thrown on).
 */
export function extractTrace(api: typeof Otel, text: string): Otel.Context | undefined {
  let carrier: unknown;
  try {
    carrier = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof carrier !== 'object' || carrier === null || Array.isArray(carrier)) return undefined;
  const fields = carrier as Record<string, unknown>;
  const extracted = api.propagation.extract(api.ROOT_CONTEXT, fields);
  const got = api.trace.getSpanContext(extracted);
  if (got !== undefined && api.isSpanContextValid(got)) return extracted;
  // No propagator registered here (or one that does not read traceparent): read it ourselves.
  const m = typeof fields.traceparent === 'string' ? TRACEPARENT.exec(fields.traceparent) : null;
  if (m === null) return undefined;
  const span: Otel.SpanContext = {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: Number.parseInt(m[3]!, 16),
    isRemote: true,
  };
  if (!api.isSpanContextValid(span)) return undefined;
  if (typeof fields.tracestate === 'string' && fields.tracestate !== '') {
    span.traceState = api.createTraceState(fields.tracestate);
  }
  return api.trace.setSpanContext(extracted, span);
}
