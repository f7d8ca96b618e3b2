import type * as Otel from '@opentelemetry/api';
import type * as Prom from 'prom-client';
import type { AttemptOutcome, AttemptScope, MetricsSource, TelemetryHooks } from '../core/telemetry.js';
import type { RuntimeMetrics, TelemetrySupport } from '../runtime/createRuntime.js';
import { RuntimeMetricSet } from './metrics.js';
import { type Loader, optionalModule, requiredModule } from './optional.js';
import { readMetricsOptions } from './options.js';
import { TaskTracing } from './tracing.js';

/** A listening `/metrics` server. */
export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves a metrics source on a port of its own (the viewer's `serveMetrics`, handed in from the top). */
export type ServeMetrics = (source: MetricsSource, options: { port: number; host?: string }) => Promise<MetricsServer>;

/** What the telemetry support needs from outside its layer. */
export interface TelemetryDeps {
  serveMetrics: ServeMetrics;
  /** How optional packages are loaded (tests play a missing one). */
  load?: Loader;
}

const METRICS = 'createRuntime({ metrics })';

/**
 * Metrics and traces as `createRuntime` uses them: tracing whenever
 * `@opentelemetry/api` is installed (the OpenTelemetry convention: the API is
 * a no-op without an SDK), metrics when asked for (`prom-client` required).
 */
export function telemetrySupport(deps: TelemetryDeps): TelemetrySupport {
  let otel: typeof Otel | null | undefined;
  // Looked up once per process: a failed lookup is not repeated for every runtime.
  const api = () => {
    if (otel === undefined) otel = optionalModule<typeof Otel>('@opentelemetry/api', deps.load) ?? null;
    return otel ?? undefined;
  };
  const prom = () => requiredModule<typeof Prom>('prom-client', METRICS, deps.load);
  return {
    check(metrics) {
      if (readMetricsOptions(metrics).on) prom();
    },
    attach(rt, metrics) {
      const settings = readMetricsOptions(metrics);
      const otelApi = api();
      const tracing = otelApi === undefined ? undefined : new TaskTracing(otelApi);
      if (!settings.on) return { hooks: hooksOf(tracing, undefined), metrics: undefined };
      const set = new RuntimeMetricSet(prom(), rt);
      const source: { -readonly [K in keyof RuntimeMetrics]: RuntimeMetrics[K] } = {
        contentType: set.registry.contentType,
        scrape: () => set.registry.metrics(),
        url: undefined,
      };
      let server: MetricsServer | undefined;
      rt.addComponent({
        kind: 'metrics',
        name: 'metrics',
        start: async () => {
          if (settings.port === undefined) return;
          server = await deps.serveMetrics(source, { port: settings.port, host: settings.host });
          source.url = server.url;
        },
        // The values stay readable after the stop; only the port and the bus subscriptions go.
        stop: async () => {
          set.close();
          const s = server;
          server = undefined;
          source.url = undefined;
          await s?.close();
        },
      });
      return { hooks: hooksOf(tracing, set), metrics: source };
    },
  };
}

/** The hooks the patterns call: undefined when neither traces nor metrics are on, so patterns skip every call. */
function hooksOf(tracing: TaskTracing | undefined, set: RuntimeMetricSet | undefined): TelemetryHooks | undefined {
  if (!tracing && !set) return undefined;
  const hooks: TelemetryHooks = {};
  if (tracing) {
    hooks.traceContext = () => tracing.traceContext();
    hooks.sagaStep = (info, run) => tracing.sagaStep(info, run);
  }
  if (tracing && set) {
    hooks.taskAttempt = (info) => new BothScopes(tracing.attempt(info), set.attempt(info));
  } else if (tracing) hooks.taskAttempt = (info) => tracing.attempt(info);
  else if (set) hooks.taskAttempt = (info) => set.attempt(info);
  if (set) {
    hooks.breakerCall = (breaker, ms, outcome) => set.breakerCall(breaker, ms, outcome);
    hooks.breakerRefused = (breaker, why) => set.breakerRefused(breaker, why);
  }
  return hooks;
}

/** Traced and measured at once. */
class BothScopes implements AttemptScope {
  constructor(
    private readonly traced: AttemptScope,
    private readonly measured: AttemptScope,
  ) {}

  run<T>(fn: () => T): T {
    return this.traced.run(fn);
  }

  end(outcome: AttemptOutcome, ms: number, error?: unknown): void {
    this.measured.end(outcome, ms, error);
    this.traced.end(outcome, ms, error);
  }
}
