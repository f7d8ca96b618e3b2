export type { Bus, BusEvent, BusHandler, EventMap, HandlerFailure, PublishOptions } from './actors/bus.js';
export type { SagaOptions, SagaStep, StepContext } from './actors/saga/definition.js';
export type { SagaResult, SagaResults } from './actors/saga/result.js';
export type { ExecuteOptions } from './actors/saga/runner.js';
export { publish } from './machines/publish.js';
export { queueMachine } from './machines/queue.js';
export { createSagaMachine } from './machines/saga.js';
export { taskMachine } from './machines/task.js';
export { CallTimeoutError, CircuitOpenError } from './runtime/breakerErrors.js';
export type { Breaker, BreakerOptions, BreakerState, BreakerStats } from './runtime/breakers.js';
export type { Clock } from './runtime/clock.js';
export { systemClock } from './runtime/clock.js';
export type { ActorFailure, RuntimeOptions, RuntimeState, SpawnOptions } from './runtime/createRuntime.js';
export { createRuntime, Runtime } from './runtime/createRuntime.js';
export type { KeelErrorCode } from './runtime/errors.js';
export { KeelError, NonRetryableError } from './runtime/errors.js';
export type {
  DeadTask,
  EnqueueOptions,
  Queue,
  QueueOptions,
  QueueStats,
  Task,
  TaskEventPayload,
} from './runtime/queues.js';
export type { RetryOptions, RetryPolicy } from './runtime/retryPolicy.js';
export type { Saga } from './runtime/sagas.js';
export { memoryStore } from './stores/memory.js';
export { type PostgresStore, type PostgresStoreOptions, postgresStore } from './stores/postgres.js';
export { type SqliteStoreOptions, sqliteStore } from './stores/sqlite.js';
export type { Store, TaskRecord, TaskState } from './stores/store.js';
