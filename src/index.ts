export type { Bus, BusEvent, BusHandler, EventMap, HandlerFailure, PublishOptions } from './actors/bus/bus.js';
export type {
  SagaChildStep,
  SagaOptions,
  SagaParallelStep,
  SagaRunStep,
  SagaSignalStep,
  SagaSleepStep,
  SagaStep,
  StepContext,
} from './actors/saga/definition.js';
export type { SagaResult, SagaResults } from './actors/saga/result.js';
export type { ExecuteOptions } from './actors/saga/runner.js';
export type { Clock } from './core/clock.js';
export { systemClock } from './core/clock.js';
export type { KeelErrorCode } from './core/errors.js';
export { CallTimeoutError, CircuitOpenError, KeelError, NonRetryableError } from './core/errors.js';
export type { RetryOptions, RetryPolicy } from './core/retry.js';
export { createRuntime } from './createRuntime.js';
export { publish } from './machines/publish.js';
export { queueMachine } from './machines/queue.js';
export { createSagaMachine } from './machines/saga.js';
export { taskMachine } from './machines/task.js';
export type { Breaker, BreakerOptions, BreakerState, BreakerStats, CallOptions } from './runtime/breakers.js';
export type {
  ActorFailure,
  MetricsOptions,
  RuntimeMetrics,
  RuntimeOptions,
  RuntimeState,
  SpawnOptions,
} from './runtime/createRuntime.js';
export { Runtime } from './runtime/createRuntime.js';
export type {
  DeadTask,
  EnqueueOptions,
  Queue,
  QueueOptions,
  QueueStats,
  Task,
  TaskEventPayload,
} from './runtime/queues.js';
export type { Saga } from './runtime/sagas.js';
export { memoryStore } from './stores/memory/store.js';
export { type PostgresStore, type PostgresStoreOptions, postgresStore } from './stores/postgres/store.js';
export type { SharedSagas } from './stores/sagaStore.js';
export { type SqliteStoreOptions, sqliteStore } from './stores/sqlite/store.js';
export type { BusBridge, Store, TaskRecord, TaskState, Transactional, Watchable } from './stores/store.js';
