import { invalidOptions } from '../core/errors.js';
import { describeValue, OptionReader } from '../core/options.js';
import type { MetricsOptions } from '../runtime/createRuntime.js';

/** `createRuntime({ metrics })` resolved: off, or on with an optional port of its own. */
export type MetricsSettings = { on: false } | { on: true; port: number | undefined; host: string };

/** Reads `createRuntime({ metrics })`; `INVALID_OPTIONS` names the option and the value. */
export function readMetricsOptions(metrics: unknown): MetricsSettings {
  if (metrics === undefined || metrics === false) return { on: false };
  if (metrics === true) return { on: true, port: undefined, host: '127.0.0.1' };
  if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) {
    throw invalidOptions(
      'createRuntime',
      'metrics',
      `must be true, false or { port, host }, got ${describeValue(metrics)}`,
    );
  }
  const r = new OptionReader('createRuntime', metrics, ['port', 'host'], 'a metrics option', 'metrics');
  const { port, host } = r.values as MetricsOptions;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw invalidOptions(
      'createRuntime',
      'metrics.port',
      `must be an integer from 0 to 65535, got ${describeValue(port)}`,
    );
  }
  // The host also decides which Host headers the server answers, so it must be a plain name or address.
  if (host !== undefined && (typeof host !== 'string' || !/^[a-z0-9_.:-]+$/i.test(host))) {
    throw invalidOptions(
      'createRuntime',
      'metrics.host',
      `must be a host name or IP address like '127.0.0.1' or '0.0.0.0', got ${describeValue(host)}`,
    );
  }
  return { on: true, port, host: host ?? '127.0.0.1' };
}
