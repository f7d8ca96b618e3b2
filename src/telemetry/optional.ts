import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KeelError } from '../core/errors.js';

/** Loads a CommonJS module by name; a seam so tests can play a missing package. */
export type Loader = (name: string) => unknown;

let required: NodeRequire | undefined;
/** Made on first use: in a CommonJS bundle `import.meta.url` is empty, and packages are looked up from the working directory. */
const nodeRequire: Loader = (name) => {
  required ??= createRequire(import.meta.url ?? pathToFileURL(join(process.cwd(), 'keel.js')).href);
  return required(name);
};

/** True when `error` says that `name` itself (not something it imports) could not be found. */
function isMissing(error: unknown, name: string): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false;
  return String((error as Error).message).includes(`'${name}'`);
}

/**
 * An optional peer dependency, or undefined when it is not installed. Loaded
 * synchronously on first use (both peers ship CommonJS), so `createRuntime`
 * can refuse or skip a feature before anything runs. A package that is there
 * but fails to load is an error, not a missing package.
 */
export function optionalModule<T>(name: string, load: Loader = nodeRequire): T | undefined {
  try {
    return load(name) as T;
  } catch (error) {
    if (isMissing(error, name)) return undefined;
    throw error;
  }
}

/** An optional peer dependency that `feature` cannot do without: `MISSING_DEPENDENCY` names it and the install command. */
export function requiredModule<T>(name: string, feature: string, load: Loader = nodeRequire): T {
  const m = optionalModule<T>(name, load);
  if (m === undefined) {
    throw new KeelError(
      'MISSING_DEPENDENCY',
      `${feature} needs the package '${name}', which is not installed: run \`npm i ${name}\``,
    );
  }
  return m;
}
