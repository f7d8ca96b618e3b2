import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, postgresStore, type Runtime, sqliteStore } from '../../src/index.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { removeDb, tempPath } from '../fixtures/tempDb.js';
import { tracedCheckoutSteps } from '../fixtures/tracedSteps.js';
import { eachLine } from '../fixtures/wait.js';

// This process is the consumer. It registers no propagator (a bare SDK registers none): keel reads the stored
// traceparent itself, while the producer wrote it with the W3C propagator, as NodeSDK sets up.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
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

type Ids = { traceId: string; spanId: string };

/** Runs the producer to its end; the span contexts of its enqueue and its execute. */
function produce(args: string[]): Promise<{ task: Ids; saga: Ids }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '../fixtures/tracedProducer.ts'), ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const seen: Record<string, Ids> = {};
    let stopped = false;
    let err = '';
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    eachLine(child.stdout, (line) => {
      const [what, traceId, spanId] = line.split(' ');
      if (what === 'STOPPED') stopped = true;
      else if (what !== undefined && traceId !== undefined && spanId !== undefined) seen[what] = { traceId, spanId };
    });
    child.on('exit', (code) => {
      if (code === 0 && stopped && seen.TASK && seen.SAGA) resolve({ task: seen.TASK, saga: seen.SAGA });
      else reject(new Error(`producer exited with ${code}: ${err}`));
    });
  });
}

/** The consumer: runs the task and resumes the saga the producer left waiting, in this process. */
async function consume(makeStore: () => ReturnType<typeof sqliteStore>, producer: { task: Ids; saga: Ids }) {
  const rt = createRuntime({ store: makeStore(), onError: () => {} });
  running.push(rt);
  const handled: Array<string | undefined> = [];
  const mail = rt.queue('mail', {
    handler: () => void handled.push(trace.getActiveSpan()?.spanContext().spanId),
  });
  const checkout = rt.saga('checkout', { steps: tracedCheckoutSteps(() => 'charged') });
  // Started outside any span: the parents below can only come from the store.
  await rt.start();
  await mail.drain();
  await checkout.signal('o1', 'paid', { ok: true });
  const result = await checkout.execute({ cart: 1 }, { id: 'o1' });
  expect(result.status).toBe('completed');

  const finished = exporter.getFinishedSpans();
  const attempts = finished.filter((s) => s.name === 'mail process');
  expect(attempts).toHaveLength(1);
  const [attempt] = attempts;
  expect(attempt?.kind).toBe(SpanKind.CONSUMER);
  expect(attempt?.spanContext().traceId).toBe(producer.task.traceId);
  expect(attempt?.parentSpanContext?.spanId).toBe(producer.task.spanId);
  expect(attempt?.parentSpanContext?.isRemote).toBe(true);
  // The handler ran inside the attempt's span.
  expect(handled).toEqual([attempt?.spanContext().spanId]);

  const charges = finished.filter((s) => s.name === 'checkout step charge');
  expect(charges).toHaveLength(1);
  expect(charges[0]?.spanContext().traceId).toBe(producer.saga.traceId);
  expect(charges[0]?.parentSpanContext?.spanId).toBe(producer.saga.spanId);
  // Nothing of the producer's steps ran here.
  expect(finished.filter((s) => s.name === 'checkout step reserve')).toEqual([]);
}

describe('traces across processes: the enqueue/execute span is the parent of the handler span in another process', () => {
  it('SQLite: a task and a resumed saga', { timeout: 60_000 }, async () => {
    const path = `${tempPath('trace')}.db`;
    try {
      const producer = await produce(['sqlite', path]);
      await consume(() => sqliteStore({ path }), producer);
    } finally {
      removeDb(path);
    }
  });

  describe.skipIf(!pgAvailable)('Postgres', () => {
    const fresh = freshSchemas('trace');
    it('a task and a saga adopted from a stopped runtime', { timeout: 60_000 }, async () => {
      const schema = fresh();
      const producer = await produce(['postgres', PG_URL, schema]);
      await consume(() => postgresStore({ connectionString: PG_URL, schema }) as never, producer);
    });
  });
});
