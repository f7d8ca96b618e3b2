export type {
  Bus,
  BusEvent,
  BusHandler,
  BusOptions,
  Delivery,
  DurableHandler,
  DurableSubscribeOptions,
  EventMap,
  HandlerFailure,
  PublishOptions,
  RecordFailure,
  TransactionalPublishOptions,
} from './actors/bus/bus.js';
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
export type { SagaHistoryEntry } from './actors/saga/history.js';
export type { SagaInfo, SagaListOptions, SagaPage } from './actors/saga/info.js';
export type { SagaResult, SagaResults } from './actors/saga/result.js';
export type { SagaRetentionOptions, SagaRetentionRule } from './actors/saga/retention.js';
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
  CancelResult,
  DeadTask,
  EnqueueOptions,
  ListQuery,
  Queue,
  QueueOptions,
  QueueStats,
  RetentionOptions,
  Task,
  TaskEventPayload,
  TaskInfo,
} from './runtime/queues.js';
export { DEFAULT_RETENTION } from './runtime/queues.js';
export type { Saga } from './runtime/sagas.js';
export type {
  MissedPolicy,
  Schedule,
  ScheduleActor,
  ScheduleFired,
  ScheduleInfo,
  ScheduleOptions,
} from './runtime/schedules.js';
export { memoryStore } from './stores/memory/store.js';
export { type PostgresStore, type PostgresStoreOptions, postgresStore } from './stores/postgres/store.js';
export type { SagaOrder, SharedSagas } from './stores/sagaStore.js';
export { type SqliteStoreOptions, sqliteStore } from './stores/sqlite/store.js';
export type {
  BusBridge,
  CancelWatchable,
  DeadTaskRemoval,
  FireResult,
  QueuePauses,
  Retention,
  ScheduleRow,
  Schedules,
  Store,
  TaskOrder,
  TaskPage,
  TaskQuery,
  TaskRecord,
  TaskState,
  Transactional,
  Watchable,
} from './stores/store.js';
