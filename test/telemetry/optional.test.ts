import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { KeelError } from '../../src/index.js';
import { createRuntimeWith } from '../../src/runtime/createRuntime.js';
import { optionalModule, requiredModule } from '../../src/telemetry/optional.js';
import { telemetrySupport } from '../../src/telemetry/support.js';
import { serveMetrics } from '../../src/viewer/server.js';

const load = createRequire(import.meta.url);

/** A loader on which `missing` packages are not installed; the rest load as usual. */
function without(...missing: string[]) {
  return (name: string) => {
    if (missing.includes(name)) {
      throw Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- keel`), {
        code: 'MODULE_NOT_FOUND',
      });
    }
    return load(name);
  };
}

describe('optional peer dependencies', () => {
  it('optionalModule: undefined when the package is missing; an error inside a present package is rethrown', () => {
    expect(optionalModule('prom-client', without('prom-client'))).toBeUndefined();
    const broken = () => {
      throw Object.assign(new Error("Cannot find module 'tdigest'"), { code: 'MODULE_NOT_FOUND' });
    };
    expect(() => optionalModule('prom-client', broken)).toThrow("Cannot find module 'tdigest'");
    expect(optionalModule<{ Registry: unknown }>('prom-client')?.Registry).toBeTypeOf('function');
  });

  it('requiredModule: MISSING_DEPENDENCY names the package, the feature and the install command', () => {
    let error: unknown;
    try {
      requiredModule('prom-client', 'createRuntime({ metrics })', without('prom-client'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeelError);
    expect((error as KeelError).code).toBe('MISSING_DEPENDENCY');
    expect((error as KeelError).message).toBe(
      "createRuntime({ metrics }) needs the package 'prom-client', which is not installed: run `npm i prom-client`",
    );
  });

  it('metrics without prom-client: createRuntime throws MISSING_DEPENDENCY before anything runs', () => {
    const support = telemetrySupport({ serveMetrics, load: without('prom-client') });
    expect(() => createRuntimeWith({ metrics: { port: 0 } }, undefined, support)).toThrow(
      expect.objectContaining({ code: 'MISSING_DEPENDENCY', message: expect.stringContaining("'prom-client'") }),
    );
    // Not asked for: no error, and tracing still runs.
    const rt = createRuntimeWith({}, undefined, support);
    expect(rt.metrics).toBeUndefined();
    expect(rt.host.observe?.taskAttempt).toBeTypeOf('function');
  });

  it('without @opentelemetry/api tracing is simply off: no hooks, the queue runs as before', async () => {
    const support = telemetrySupport({ serveMetrics, load: without('@opentelemetry/api') });
    const rt = createRuntimeWith({}, undefined, support);
    expect(rt.host.observe).toBeUndefined();
    const done: unknown[] = [];
    const q = rt.queue('q', { handler: (task) => void done.push(task.payload) });
    await rt.start();
    await q.enqueue(1);
    await q.drain();
    await rt.stop();
    expect(done).toEqual([1]);
    // With metrics but no API: metric hooks only.
    const measured = createRuntimeWith({ metrics: true }, undefined, support);
    expect(measured.host.observe?.traceContext).toBeUndefined();
    expect(measured.host.observe?.sagaStep).toBeUndefined();
    expect(measured.host.observe?.breakerCall).toBeTypeOf('function');
  });
});
