// Run as a child process by exit.test.ts: with metrics on their own port, a viewer serving /metrics too,
// a scrape in flight on a kept-alive connection and tracing through an SDK, the process must exit by itself
// once the runtime stops.
import { Agent, request } from 'node:http';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRuntime } from '../../src/index.js';

const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

const rt = createRuntime({ metrics: { port: 0 }, viewer: { port: 0 } });
const q = rt.queue('q', { handler: async () => {}, retry: { initialDelayMs: 3_600_000 } });
const sms = rt.breaker('sms', { callTimeoutMs: 3_600_000 });
await rt.start();
await trace.getTracer('app').startActiveSpan('enqueue', async (span) => {
  await q.enqueue(1);
  span.end();
});
await q.drain();
await q.enqueue(2, { delayMs: 3_600_000 });
await sms.call(async () => 'ok');
const keepAlive = new Agent({ keepAlive: true });
for (const url of [rt.metrics?.url as string, `${rt.viewer?.url}metrics`]) {
  const status = await new Promise<number | undefined>((resolve, reject) =>
    request(url, { agent: keepAlive }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    })
      .on('error', reject)
      .end(),
  );
  if (status !== 200) throw new Error(`${url} answered ${status}`);
}
if (exporter.getFinishedSpans().length === 0) throw new Error('no span recorded');
await rt.stop();
console.log('stopped');
