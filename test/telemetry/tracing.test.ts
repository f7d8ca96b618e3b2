import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, NonRetryableError, type Runtime } from '../../src/index.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const app = trace.getTracer('app');

beforeAll(() => {
  expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
  expect(trace.setGlobalTracerProvider(provider)).toBe(true);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

const running: Runtime[] = [];
afterEach(async () => {
  for (const rt of running.splice(0)) await rt.stop();
  exporter.reset();
});

function spans(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name);
}

describe('traces: one span per task attempt', () => {
  it('an enqueue inside a span is the parent of every attempt span; the handler runs inside its attempt span', async () => {
    const rt = createRuntime();
    running.push(rt);
    let tries = 0;
    const seen: Array<string | undefined> = [];
    const q = rt.queue('mail', {
      retry: { initialDelayMs: 1 },
      handler: async () => {
        // The handler's own spans nest under the attempt's.
        await app.startActiveSpan('send', async (span) => {
          seen.push(trace.getActiveSpan()?.spanContext().spanId);
          span.end();
        });
        if (tries++ === 0) throw new Error('smtp down');
      },
    });
    await rt.start();
    let enqueueSpan: { traceId: string; spanId: string } | undefined;
    await app.startActiveSpan('signup', async (span) => {
      enqueueSpan = span.spanContext();
      await q.enqueue({ to: 'a@example.com' });
      span.end();
    });
    await q.drain();

    const attempts = spans('mail process').sort(
      (a, b) => Number(a.attributes['keel.task.attempt']) - Number(b.attributes['keel.task.attempt']),
    );
    expect(attempts).toHaveLength(2);
    for (const s of attempts) {
      expect(s.spanContext().traceId).toBe(enqueueSpan?.traceId);
      expect(s.parentSpanContext?.spanId).toBe(enqueueSpan?.spanId);
      expect(s.kind).toBe(SpanKind.CONSUMER);
      expect(s.attributes['messaging.system']).toBe('keel');
      expect(s.attributes['messaging.destination.name']).toBe('mail');
    }
    const [first, second] = attempts as [ReadableSpan, ReadableSpan];
    expect(first.attributes['keel.task.attempt']).toBe(1);
    expect(first.attributes['keel.task.outcome']).toBe('retrying');
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.status.message).toBe('smtp down');
    expect(first.events.map((e) => e.name)).toContain('exception');
    expect(second.attributes['keel.task.outcome']).toBe('succeeded');
    expect(second.status.code).toBe(SpanStatusCode.UNSET);

    const sends = spans('send');
    expect(sends).toHaveLength(2);
    expect(sends.map((s) => s.parentSpanContext?.spanId).sort()).toEqual(
      attempts.map((a) => a.spanContext().spanId).sort(),
    );
    expect(seen.sort()).toEqual(sends.map((s) => s.spanContext().spanId).sort());
  });

  it('a task enqueued outside any span starts a trace of its own (not the context the workers run in)', async () => {
    const rt = createRuntime();
    running.push(rt);
    const q = rt.queue('jobs', {
      handler: async (task) => {
        if ((task.payload as { bad?: boolean }).bad) throw new NonRetryableError('bad');
      },
    });
    // Started inside a span: the workers' async context holds it, and attempts must not hang under it.
    await app.startActiveSpan('boot', async (span) => {
      await rt.start();
      span.end();
    });
    await context.with(trace.deleteSpan(context.active()), async () => {
      await q.enqueue({});
      await q.enqueue({ bad: true });
    });
    await q.drain();
    const attempts = spans('jobs process');
    expect(attempts).toHaveLength(2);
    for (const s of attempts) expect(s.parentSpanContext).toBeUndefined();
    expect(new Set(attempts.map((s) => s.spanContext().traceId)).size).toBe(2);
    const dead = attempts.find((s) => s.attributes['keel.task.outcome'] === 'dead');
    expect(dead?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a deduplicated enqueue does not take over the parent of the task it joined', async () => {
    const rt = createRuntime();
    running.push(rt);
    const q = rt.queue('sync', { handler: async () => {} });
    q.pause();
    await rt.start();
    let firstSpan: string | undefined;
    await app.startActiveSpan('first', async (span) => {
      firstSpan = span.spanContext().spanId;
      await q.enqueue({}, { key: 'k' });
      span.end();
    });
    await app.startActiveSpan('second', async (span) => {
      expect((await q.enqueue({}, { key: 'k' })).deduplicated).toBe(true);
      span.end();
    });
    q.resume();
    await q.drain();
    const [attempt] = spans('sync process');
    expect(attempt?.parentSpanContext?.spanId).toBe(firstSpan);
  });
});

describe('traces: one span per saga step attempt and compensation', () => {
  it('steps and compensations of an execute made inside a span are its children; a failed attempt is an ERROR span', async () => {
    const rt = createRuntime();
    running.push(rt);
    let charges = 0;
    const checkout = rt.saga('checkout', {
      steps: [
        { name: 'reserve', run: () => 'r1', compensate: async () => {} },
        {
          name: 'pay',
          retry: { initialDelayMs: 1, maxAttempts: 2 },
          run: () => {
            charges++;
            throw new Error(`declined ${charges}`);
          },
        },
      ],
    });
    await rt.start();
    let parent: { traceId: string; spanId: string } | undefined;
    await app.startActiveSpan('order', async (span) => {
      parent = span.spanContext();
      expect((await checkout.execute({})).status).toBe('compensated');
      span.end();
    });
    const names = exporter
      .getFinishedSpans()
      .filter((s) => s.name.startsWith('checkout '))
      .map((s) => s.name);
    expect(names.sort()).toEqual([
      'checkout compensate reserve',
      'checkout step pay',
      'checkout step pay',
      'checkout step reserve',
    ]);
    for (const s of exporter.getFinishedSpans().filter((x) => x.name.startsWith('checkout '))) {
      expect(s.parentSpanContext?.spanId, s.name).toBe(parent?.spanId);
      expect(s.spanContext().traceId).toBe(parent?.traceId);
      expect(s.attributes['keel.saga.name']).toBe('checkout');
    }
    const pays = spans('checkout step pay').sort(
      (a, b) => Number(a.attributes['keel.saga.attempt']) - Number(b.attributes['keel.saga.attempt']),
    );
    expect(pays.map((s) => s.attributes['keel.saga.attempt'])).toEqual([1, 2]);
    expect(pays.map((s) => s.status.message)).toEqual(['declined 1', 'declined 2']);
    expect(pays.every((s) => s.status.code === SpanStatusCode.ERROR)).toBe(true);
    const [undo] = spans('checkout compensate reserve');
    expect(undo?.attributes['keel.saga.compensation']).toBe(true);
    expect(undo?.status.code).toBe(SpanStatusCode.UNSET);
  });
});
