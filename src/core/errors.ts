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
  | 'NON_RETRYABLE'
  | 'LEASE_LOST'
  | 'TASK_TIMEOUT'
  | 'STEP_TIMEOUT'
  | 'SAGA_NOT_OWNED'
  | 'SAGA_VERSION_MISMATCH'
  | 'MISSING_DEPENDENCY'
  | 'BULKHEAD_FULL'
  | 'CANCELLED'
  | 'SAGA_FINISHED'
  /** A closed queue's handle (`queue.close()`). */
  | 'CLOSED';

/** Every code keel throws, for exhaustive handling and the test that keeps this list true. */
export const KEEL_ERROR_CODES: readonly KeelErrorCode[] = [
  'CIRCUIT_OPEN',
  'CALL_TIMEOUT',
  'INVALID_TOPIC',
  'INVALID_OPTIONS',
  'INVALID_PAYLOAD',
  'DUPLICATE_NAME',
  'NOT_STARTED',
  'RUNTIME_STOPPED',
  'STORE_UNAVAILABLE',
  'NOT_FOUND',
  'NON_RETRYABLE',
  'LEASE_LOST',
  'TASK_TIMEOUT',
  'STEP_TIMEOUT',
  'SAGA_NOT_OWNED',
  'SAGA_VERSION_MISMATCH',
  'MISSING_DEPENDENCY',
  'BULKHEAD_FULL',
  'CANCELLED',
  'SAGA_FINISHED',
  'CLOSED',
];

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

// Circuit breaker

/** The states in which a breaker refuses calls. */
export type RefusingState = 'open' | 'halfOpen' | 'isolated';

/**
 * Thrown by `breaker.call` when the circuit refuses the call. `retryAfterMs` is
 * how long until a trial call will be admitted; it is `Infinity` while the
 * breaker is isolated (nothing is admitted until `reset()`; wait for
 * `breaker.<name>.closed` instead of a timer).
 *
 * Rejections are the hot path of an open circuit, so by default no stack trace
 * is captured (the call site is the caller's own `await`); pass
 * `captureStack: true` in the breaker's options to get one.
 */
export class CircuitOpenError extends KeelError {
  declare readonly code: 'CIRCUIT_OPEN';
  /** The breaker's name. */
  readonly breaker: string;
  /** Milliseconds until a trial call is admitted (`Infinity` while isolated). */
  readonly retryAfterMs: number;
  /** The state that refused the call. */
  readonly state: RefusingState;

  constructor(breaker: string, retryAfterMs: number, state: RefusingState = 'open') {
    super('CIRCUIT_OPEN', refusal(breaker, retryAfterMs, state));
    this.name = 'CircuitOpenError';
    this.breaker = breaker;
    this.retryAfterMs = retryAfterMs;
    this.state = state;
  }

  /**
   * A `CircuitOpenError` made without running the `Error` constructor, which
   * costs ~0.3 µs even with no stack frames. It is `instanceof` every class of
   * its chain; `message` and `stack` are computed when read.
   */
  static unstacked(breaker: string, retryAfterMs: number, state: RefusingState): CircuitOpenError {
    const e = Object.create(CircuitOpenError.prototype) as { -readonly [K in keyof CircuitOpenError]: unknown };
    e.code = 'CIRCUIT_OPEN';
    e.breaker = breaker;
    e.retryAfterMs = retryAfterMs;
    e.state = state;
    return e as CircuitOpenError;
  }
}

// Fallbacks for unstacked errors; an error made by the constructor has its own `name`, `message` and `stack`.
Object.defineProperties(CircuitOpenError.prototype, {
  name: { value: 'CircuitOpenError', writable: true, configurable: true },
  message: {
    get(this: CircuitOpenError) {
      return refusal(this.breaker, this.retryAfterMs, this.state);
    },
    set(this: CircuitOpenError, value: unknown) {
      Object.defineProperty(this, 'message', { value, writable: true, configurable: true });
    },
    configurable: true,
  },
  stack: {
    get(this: CircuitOpenError) {
      return `${this.name}: ${this.message}\n    (no stack captured; create the breaker with captureStack: true for one)`;
    },
    set(this: CircuitOpenError, value: unknown) {
      Object.defineProperty(this, 'stack', { value, writable: true, configurable: true });
    },
    configurable: true,
  },
});

function refusal(breaker: string, retryAfterMs: number, state: RefusingState): string {
  if (state === 'isolated') return `circuit '${breaker}' is isolated; calls are refused until reset()`;
  if (state === 'halfOpen') return `circuit '${breaker}' is half-open and its trial slots are taken`;
  return `circuit '${breaker}' is open; retry after ${retryAfterMs} ms`;
}

/** Thrown by `breaker.call` when the call took longer than `callTimeoutMs`; the call's signal is aborted. */
export class CallTimeoutError extends KeelError {
  declare readonly code: 'CALL_TIMEOUT';
  /** The breaker's name. */
  readonly breaker: string;
  /** The timeout that expired. */
  readonly timeoutMs: number;

  constructor(breaker: string, timeoutMs: number) {
    super('CALL_TIMEOUT', `call through breaker '${breaker}' timed out after ${timeoutMs} ms`);
    this.name = 'CallTimeoutError';
    this.breaker = breaker;
    this.timeoutMs = timeoutMs;
  }
}

// Task queue

/** The abort reason of `task.signal` when the task's lease was lost (another worker may hold it now). */
export class LeaseLostError extends KeelError {
  constructor(queue: string, id: string) {
    super('LEASE_LOST', `queue('${queue}'): task ${id} lost its lease; its result will be ignored`);
    this.name = 'LeaseLostError';
  }
}

/** The failure of an attempt that ran longer than the queue's `timeoutMs`. */
export class TaskTimeoutError extends KeelError {
  constructor(queue: string, id: string, ms: number) {
    super('TASK_TIMEOUT', `queue('${queue}'): task ${id} did not settle within ${ms} ms`);
    this.name = 'TaskTimeoutError';
  }
}
