import { KeelError } from '../core/errors.js';

/**
 * The error a caller sees when a store's driver fails (a `SqliteError` for
 * `SQLITE_BUSY`, a `pg` `DatabaseError`, a dropped connection): `KeelError`
 * `STORE_UNAVAILABLE` with the driver's error as `cause`. keel's own errors
 * pass through unchanged.
 */
export function storeError(where: string, error: unknown): unknown {
  if (error instanceof KeelError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new KeelError('STORE_UNAVAILABLE', `${where}: ${message}`, { cause: error });
}

/**
 * `store` with every method's failure turned into `storeError`, thrown or
 * rejected as the method did: callers of keel never see a raw driver error.
 * Properties and the methods' results are untouched.
 */
export function withDriverErrors<T extends object>(where: string, store: T): T {
  const wrapped = { ...store } as Record<string, unknown>;
  for (const [key, value] of Object.entries(store)) {
    if (typeof value !== 'function') continue;
    const method = value as (...args: unknown[]) => unknown;
    wrapped[key] = function (this: unknown, ...args: unknown[]) {
      let result: unknown;
      try {
        result = method.apply(this, args);
      } catch (error) {
        throw storeError(where, error);
      }
      if (result instanceof Promise) {
        return result.catch((error: unknown) => {
          throw storeError(where, error);
        });
      }
      return result;
    };
  }
  return wrapped as T;
}
