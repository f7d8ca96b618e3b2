import * as api from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterEach, describe, expect, it } from 'vitest';
import { extractTrace, injectTrace } from '../../src/telemetry/traceContext.js';

const span: api.SpanContext = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: api.TraceFlags.SAMPLED,
  traceState: api.createTraceState('vendor=abc,other=1'),
};
const active = api.trace.setSpanContext(api.ROOT_CONTEXT, span);

afterEach(() => {
  api.propagation.disable();
});

describe('trace context as stored text', () => {
  it('without a registered propagator: writes and reads traceparent and tracestate itself', () => {
    const text = injectTrace(api, active);
    expect(JSON.parse(text!)).toEqual({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=abc,other=1',
    });
    const back = api.trace.getSpanContext(extractTrace(api, text!)!);
    expect(back).toMatchObject({ traceId: span.traceId, spanId: span.spanId, traceFlags: 1, isRemote: true });
    expect(back?.traceState?.get('vendor')).toBe('abc');
  });

  it('with the W3C propagators registered: they write the carrier, baggage included, and read it back', () => {
    api.propagation.setGlobalPropagator(
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    );
    const withBaggage = api.propagation.setBaggage(active, api.propagation.createBaggage({ tenant: { value: 't1' } }));
    const text = injectTrace(api, withBaggage)!;
    expect(JSON.parse(text)).toMatchObject({ traceparent: expect.any(String), baggage: 'tenant=t1' });
    const ctx = extractTrace(api, text)!;
    expect(api.trace.getSpanContext(ctx)?.spanId).toBe(span.spanId);
    expect(api.propagation.getBaggage(ctx)?.getEntry('tenant')?.value).toBe('t1');
  });

  it('carries nothing when no valid span is active', () => {
    expect(injectTrace(api, api.ROOT_CONTEXT)).toBeUndefined();
    const invalid = api.trace.setSpanContext(api.ROOT_CONTEXT, api.INVALID_SPAN_CONTEXT);
    expect(injectTrace(api, invalid)).toBeUndefined();
  });

  it('ignores text it cannot read instead of throwing (a foreign or damaged column)', () => {
    for (const text of ['', 'not json', '[]', 'null', '{}', '{"traceparent":"01-xyz"}', '{"traceparent":7}']) {
      expect(extractTrace(api, text), text).toBeUndefined();
    }
    const zeros = JSON.stringify({ traceparent: `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01` });
    expect(extractTrace(api, zeros)).toBeUndefined();
  });
});
