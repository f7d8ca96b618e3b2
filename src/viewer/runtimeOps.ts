import { refreshStorePauses } from '../actors/queue/storePauses.js';
import { KeelError } from '../core/errors.js';
import { isFinalSagaStatus } from '../core/states.js';
import { breakersOf } from '../runtime/breakers.js';
import type { Runtime } from '../runtime/createRuntime.js';
import { queuesOf } from '../runtime/queues.js';
import { sagasOf } from '../runtime/sagas.js';
import { hasQueuePauses, type Store } from '../stores/store.js';
import { storeBrowse } from './browse.js';
import {
  ACTION_NAMES,
  ActionError,
  type ActionName,
  type ActionRequest,
  DEAD_SHOWN,
  deadTaskView,
  type OpsBreaker,
  type OpsQueue,
  type OpsSaga,
  type OpsSource,
  SAGAS_SHOWN,
  stateText,
} from './ops.js';

/** The actions a runtime's viewer offers: all of them (the fleet console offers fewer). */
const RUNTIME_ACTIONS: ActionName[] = [...ACTION_NAMES];

const isPaused = (value: unknown) => JSON.stringify(value ?? null).includes('"paused"');

/**
 * The operations of the live runtimes a viewer watches: their queues (counts,
 * dead tasks, paused or not), unfinished sagas and breakers, and the actions
 * an operator takes on them through each runtime's own handles.
 */
export function runtimeOps(runtimes: () => ReadonlyMap<string, Runtime<any>>): OpsSource {
  const live = () => [...runtimes()].filter(([, rt]) => rt.state === 'running');
  const runtimeOf = (label: string | undefined): [string, Runtime<any>] => {
    const all = live();
    const found = label === undefined ? all.at(-1) : all.find(([l]) => l === label);
    if (!found)
      throw new ActionError(404, label === undefined ? 'no runtime is running' : `no running runtime '${label}'`);
    return found;
  };
  const browse = storeBrowse((kind, label, name) => {
    const [, rt] = runtimeOf(label);
    if (kind === 'queue') {
      if (!queuesOf(rt).has(name)) throw new ActionError(404, `no queue '${name}' in this runtime`);
      return { store: rt.store, now: rt.clock.now() };
    }
    const saga = sagasOf(rt).get(name);
    if (!saga) throw new ActionError(404, `no saga '${name}' in this runtime`);
    return { store: rt.store, now: rt.clock.now(), machine: saga.machine };
  });
  return {
    browse,
    async snapshot() {
      const queues: OpsQueue[] = [];
      const sagaNames: Array<{ runtime: string; saga: string }> = [];
      const sagas: OpsSaga[] = [];
      const breakers: OpsBreaker[] = [];
      for (const [label, rt] of live()) {
        const flags = hasQueuePauses(rt.store) ? new Set(await rt.store.pausedQueues()) : undefined;
        for (const [name, q] of queuesOf(rt)) {
          const now = rt.clock.now();
          const dead = await rt.store.dead(name, DEAD_SHOWN);
          queues.push({
            runtime: label,
            name,
            stats: await rt.store.stats(name, now),
            paused: isPaused(q.actor.getSnapshot().value),
            ...(flags && { pausedInStore: flags.has(name) }),
            dead: dead.map(deadTaskView),
          });
        }
        for (const name of sagasOf(rt).keys()) {
          sagaNames.push({ runtime: label, saga: name });
          for (const r of (await rt.store.unfinishedSagas(name)).slice(0, SAGAS_SHOWN)) {
            sagas.push({
              runtime: label,
              saga: name,
              id: r.id,
              status: r.status,
              state: stateText(r.state),
              updatedAt: r.updatedAt,
            });
          }
        }
        for (const [name, b] of breakersOf(rt)) {
          const scope = (b as { options?: { scope?: 'process' | 'fleet' } }).options?.scope ?? 'process';
          breakers.push({ runtime: label, name, state: b.state, scope });
        }
      }
      return {
        source: 'runtime',
        queues,
        sagas: sagas.slice(0, SAGAS_SHOWN),
        breakers,
        can: RUNTIME_ACTIONS,
        sagaNames,
      };
    },

    async act(req: ActionRequest) {
      const [, rt] = runtimeOf(req.runtime);
      switch (req.action) {
        case 'queue.redrive':
        case 'queue.deleteDead':
        case 'queue.cancel':
        case 'queue.pause':
        case 'queue.resume': {
          const q = queuesOf(rt).get(req.queue);
          if (!q) throw new ActionError(404, `no queue '${req.queue}' in this runtime`);
          if (req.action === 'queue.redrive') {
            const out: Record<string, string> = {};
            for (const id of req.ids) out[id] = await redriveOne(() => q.redrive(id));
            return out;
          }
          if (req.action === 'queue.deleteDead') return { deleted: await q.deleteDead(req.ids) };
          if (req.action === 'queue.cancel') return { result: await q.cancel(req.id) };
          return pauseQueue(rt.store, rt.clock.now(), req.queue, req.action === 'queue.pause', q);
        }
        case 'saga.cancel':
        case 'saga.signal': {
          const saga = sagasOf(rt).get(req.saga);
          if (!saga) throw new ActionError(404, `no saga '${req.saga}' in this runtime`);
          if (req.action === 'saga.signal') {
            await saga.signal(req.id, req.signal, req.payload);
            return { sent: req.signal };
          }
          // The cancel resolves when the saga has compensated; the page sees that in the list, so answer once it is asked.
          await checkUnfinished(rt.store, req.saga, req.id);
          void saga
            .cancel(req.id, req.reason)
            .catch((e: unknown) => rt.report(e, `console: cancelling saga '${req.saga}' '${req.id}'`));
          return { requested: true };
        }
        case 'breaker.isolate':
        case 'breaker.reset': {
          const b = breakersOf(rt).get(req.breaker);
          if (!b) throw new ActionError(404, `no breaker '${req.breaker}' in this runtime`);
          if (req.action === 'breaker.isolate') b.isolate();
          else b.reset();
          return { state: b.state };
        }
      }
    },
  };
}

/** One redrive's outcome as a word: `redriven`, `deduplicated` (a live task holds its key) or `not-found`. */
export async function redriveOne(redrive: () => Promise<boolean>): Promise<string> {
  try {
    return (await redrive()) ? 'redriven' : 'deduplicated';
  } catch (error) {
    if (error instanceof KeelError && error.code === 'NOT_FOUND') return 'not-found';
    throw error;
  }
}

/** `NOT_FOUND` / `SAGA_FINISHED` as the saga's own cancel would say, before it is started in the background. */
export async function checkUnfinished(store: Store, saga: string, id: string): Promise<void> {
  const stored = await store.loadSaga(saga, id);
  if (!stored) throw new ActionError(404, `saga '${saga}' has no run '${id}'`);
  if (isFinalSagaStatus(stored.status))
    throw new ActionError(409, `saga '${saga}' '${id}' already ended ${stored.status}`);
}

/**
 * Pauses or resumes a queue: through the store's flag where it keeps one
 * (every runtime on it obeys: Postgres fleet-wide, SQLite every process on the
 * file), else this runtime's queue only.
 */
async function pauseQueue(
  store: Store,
  now: number,
  queue: string,
  paused: boolean,
  q: { pause(): void; resume(): void },
): Promise<{ scope: 'store' | 'runtime' }> {
  if (hasQueuePauses(store)) {
    await store.setQueuePaused(queue, paused, now);
    await refreshStorePauses(store);
    return { scope: 'store' };
  }
  if (paused) q.pause();
  else q.resume();
  return { scope: 'runtime' };
}
