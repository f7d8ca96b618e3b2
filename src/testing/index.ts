export type { Coverage } from './coverage.js';
export { describeTransition, stateNodesOf, transitionsOf } from './coverage.js';
export type { EventKind } from './events.js';
export { eventKind } from './events.js';
export type { ModelPath, ModelStep, Plan, PlanOptions } from './paths.js';
export { defaultSerializeState, planPaths } from './paths.js';
export type { Driver } from './replay.js';
export { PathMismatchError, replayPath } from './replay.js';
export { settle, TestClock, type TestClockOptions } from './testClock.js';
