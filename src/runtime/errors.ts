/** Codes carried by every error keel creates. */
export type KeelErrorCode =
  | 'CIRCUIT_OPEN'
  | 'CALL_TIMEOUT'
  | 'INVALID_TOPIC'
  | 'INVALID_OPTIONS'
  | 'INVALID_PAYLOAD'
  | 'DUPLICATE_NAME'
  | 'NOT_STARTED'
  | 'RUNTIME_STOPPED'
  | 'STORE_UNAVAILABLE'
  | 'NOT_FOUND'
  /** An optional peer dependency the chosen feature needs is not installed (e.g. `pg` for postgresStore). */
  | 'MISSING_DEPENDENCY'
  | (string & {});

/** Base class of every error keel creates; `code` says what went wrong. */
export class KeelError extends Error {
  readonly code: KeelErrorCode;
  constructor(code: KeelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeelError';
    this.code = code;
  }
}

/** Thrown when options passed to a keel constructor are invalid; names the option. */
export function invalidOptions(owner: string, option: string, why: string): KeelError {
  return new KeelError('INVALID_OPTIONS', `${owner}: option '${option}' ${why}`);
}

/**
 * Thrown by a task handler to say that retrying cannot help (bad input, a
 * permanent refusal): the task goes straight to the dead letters.
 */
export class NonRetryableError extends KeelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_RETRYABLE', message, options);
    this.name = 'NonRetryableError';
  }
}
