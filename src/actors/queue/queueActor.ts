import { fromCallback, fromPromise } from 'xstate';
import { queueMachine } from '../../machines/queue.js';
import type { QueueEngine } from './engine.js';

/**
 * The queue machine with its effects: each spawned worker actor runs one
 * worker loop of the engine; lifecycle states start, pause, gate and stop
 * claims. The engine reads the mode back from the actor (`engine.attach`).
 */
export function queueLogic(engine: QueueEngine, report: (error: unknown, detail: string) => void) {
  return queueMachine.provide({
    actors: {
      worker: fromCallback(() => {
        void engine.work().catch((error) => report(error, 'a queue worker failed'));
      }),
      finishActive: fromPromise(() => engine.finishActive()),
      releaseActive: fromPromise(() => engine.releaseActive()),
    },
    actions: {
      recover: () => engine.recover(),
      startClaims: () => engine.startClaims(),
      pauseClaims: () => engine.pauseClaims(),
      closeGate: ({ event }) => engine.closeGate(event.type === 'queue.gate' ? event.retryAfterMs : Infinity),
      openGate: () => engine.openGate(),
      stopClaims: () => engine.stopClaims(),
      abortActive: () => engine.abortActive(),
      reportFailure: ({ event }) => report((event as { error?: unknown }).error, 'releasing active tasks failed'),
    },
  });
}
