import type { FleetView } from '../stores/fleetView.js';
import { CANCEL_SIGNAL } from '../stores/sagaStore.js';
import { canDeleteDead, hasQueuePauses, type Store } from '../stores/store.js';
import { storeBrowse } from './browse.js';
import {
  ActionError,
  type ActionName,
  type ActionRequest,
  DEAD_SHOWN,
  deadTaskView,
  type OpsSource,
  SAGAS_SHOWN,
  stateText,
} from './ops.js';
import { checkUnfinished } from './runtimeOps.js';

/**
 * What a console without the apps' code can do: everything that is data in
 * the store. A redrive, a delete, a pause flag, a task's cancel (the process
 * running it hears of it by NOTIFY, else at its next lease renewal), a signal
 * or a cancel request kept for a saga (its runtime picks it up and
 * compensates); not a breaker's isolate, which needs the process that runs it.
 */
const FLEET_ACTIONS: ActionName[] = [
  'queue.redrive',
  'queue.deleteDead',
  'queue.cancel',
  'queue.pause',
  'queue.resume',
  'saga.signal',
  'saga.cancel',
];

/** The fleet console's operations: read through `view`, acted on through `store` (the same schema). */
export function fleetOps(view: FleetView, store: Store, now: () => number = Date.now): OpsSource & { title: string } {
  // Lists and details are data in the store: any queue or saga name reads (an unknown one lists nothing). No app
  // code here, so a saga's machine is unknown: its detail has the history but no diagram.
  const browse = storeBrowse(() => ({ store, now: now() }));
  return {
    title: view.where,
    browse,
    async snapshot() {
      const picture = await view.read(now(), { deadShown: DEAD_SHOWN, sagasShown: SAGAS_SHOWN });
      return {
        source: 'fleet',
        title: view.where,
        queues: picture.queues.map((q) => ({
          name: q.name,
          stats: q.stats,
          paused: q.paused,
          pausedInStore: q.paused,
          dead: q.dead.map(deadTaskView),
        })),
        sagas: picture.sagas.map((s) => ({ ...s, state: stateText(s.state) })),
        breakers: picture.breakers.map((b) => ({ name: b.name, state: b.state, scope: 'fleet' as const })),
        can: FLEET_ACTIONS,
        sagaNames: (picture.sagaNames ?? []).map((saga) => ({ saga })),
      };
    },

    async act(req: ActionRequest) {
      if (!FLEET_ACTIONS.includes(req.action)) {
        throw new ActionError(501, `${req.action} needs the process that runs it; the fleet console cannot do it`);
      }
      switch (req.action) {
        case 'queue.redrive': {
          const out: Record<string, string> = {};
          for (const id of req.ids) out[id] = await store.redrive(req.queue, id, now());
          return out;
        }
        case 'queue.deleteDead':
          if (!canDeleteDead(store)) throw new ActionError(501, 'this store cannot delete tasks');
          return { deleted: await store.deleteDead(req.queue, req.ids) };
        case 'queue.cancel':
          // No runtime of this console publishes task.<queue>.cancelled: the stats count it, the history keeps it.
          return { result: await store.cancel(req.queue, req.id, now()) };
        case 'queue.pause':
        case 'queue.resume':
          if (!hasQueuePauses(store)) throw new ActionError(501, 'this store keeps no pause flags');
          await store.setQueuePaused(req.queue, req.action === 'queue.pause', now());
          return { scope: 'store' };
        case 'saga.signal':
        case 'saga.cancel': {
          await checkUnfinished(store, req.saga, req.id);
          if (req.action === 'saga.signal' && req.signal.startsWith('$')) {
            throw new ActionError(
              400,
              `saga.signal: '${req.signal}' is not a signal name (names starting with $ are keel's)`,
            );
          }
          const [name, payload] =
            req.action === 'saga.signal' ? [req.signal, req.payload ?? null] : [CANCEL_SIGNAL, req.reason ?? null];
          await store.sendSagaSignal({ saga: req.saga, id: req.id, name, payload: JSON.stringify(payload), at: now() });
          return req.action === 'saga.signal' ? { sent: req.signal } : { requested: true };
        }
        default:
          throw new ActionError(501, `${req.action} is not available in the fleet console`);
      }
    },
  };
}
