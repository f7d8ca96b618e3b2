import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, expect, it } from 'vitest';
import { createRuntime } from '../../src/index.js';

/** Without an SDK, attempts and steps skip their spans; an SDK registered later records from then on. */

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

it('an SDK registered after the runtime started records the next task attempt and saga step', async () => {
  const rt = createRuntime();
  const ran: unknown[] = [];
  const q = rt.queue('late', { handler: (t) => void ran.push(t.payload) });
  const s = rt.saga('order', { steps: [{ name: 'reserve', run: async () => 'ok' }] });
  await rt.start();
  await q.enqueue('before');
  await q.drain();
  expect(await s.execute({ n: 1 })).toMatchObject({ status: 'completed' });
  expect(exporter.getFinishedSpans()).toEqual([]);

  expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
  expect(trace.setGlobalTracerProvider(provider)).toBe(true);
  await q.enqueue('after');
  await q.drain();
  expect(await s.execute({ n: 2 })).toMatchObject({ status: 'completed' });
  expect(ran).toEqual(['before', 'after']);
  const names = exporter.getFinishedSpans().map((x) => x.name);
  expect(names).toContain('late process');
  expect(names).toContain('order step reserve');
  await rt.stop();
});
