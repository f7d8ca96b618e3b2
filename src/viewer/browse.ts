import type { AnyStateMachine } from 'xstate';
import { checkListQuery, taskInfo } from '../actors/queue/taskInfo.js';
import { encodeCursor, listQuery, sagaInfo } from '../actors/saga/info.js';
import { machineGraph } from '../diagram/graph.js';
import { machineSvg } from '../diagram/svg.js';
import { taskMachine } from '../machines/task.js';
import type { Store } from '../stores/store.js';
import { leafStates } from './hub.js';
import { type OpsBrowse, type OpsDetail, type OpsPage, type OpsSagaRow, type OpsTaskRow, shownPayload } from './ops.js';

/** Rows of a console list page unless the page asks for another size. */
export const ROWS_SHOWN = 20;

/** Where a list or detail is read: the store, the time of the read and, when known, the saga's machine. */
export interface BrowseTarget {
  store: Store;
  now: number;
  /** The saga definition's machine (a runtime knows it; the fleet console, which has no app code, does not). */
  machine?: AnyStateMachine;
}

/** Finds what a request names: throws `ActionError` 404 for an unknown runtime, queue or saga name. */
export type BrowseResolver = (kind: 'queue' | 'saga', runtime: string | undefined, name: string) => BrowseTarget;

// One drawing per machine definition: elkjs is slow, and the definitions live as long as their runtimes.
const drawn = new WeakMap<AnyStateMachine, Promise<string | undefined>>();
function diagramOf(machine: AnyStateMachine): Promise<string | undefined> {
  let svg = drawn.get(machine);
  if (!svg) {
    // A diagram that cannot be laid out leaves the detail without one; the data is what matters.
    svg = machineSvg(machineGraph(machine)).catch(() => undefined);
    drawn.set(machine, svg);
  }
  return svg;
}

/**
 * The console's lists and details read straight from a store, so a runtime's
 * viewer and the fleet console answer alike: options checked as `queue.list`
 * and `saga.list` check them (`INVALID_OPTIONS` naming the option).
 */
export function storeBrowse(resolve: BrowseResolver): OpsBrowse {
  return {
    async tasks({ runtime, queue, query }) {
      const q = checkListQuery(queue, { limit: ROWS_SHOWN, ...query });
      const { store, now } = resolve('queue', runtime, queue);
      const page = await store.list(queue, q, now);
      const items: OpsTaskRow[] = page.items.map((r) => ({
        id: r.id,
        state: r.state,
        attempt: r.attempt,
        ...(r.key !== undefined && { key: r.key }),
        ...(r.group !== undefined && { group: r.group }),
        ...(r.priority !== undefined && { priority: r.priority }),
        payload: shownPayload(r.payload),
        ...(r.lastError !== undefined && { error: shownPayload(r.lastError) }),
        createdAt: r.createdAt,
        ...(r.finishedAt !== undefined && { finishedAt: r.finishedAt }),
      }));
      return withNext(items, page.next);
    },

    async task(runtime, queue, id) {
      const { store, now } = resolve('queue', runtime, queue);
      const record = await store.get(queue, id, now);
      if (!record) return undefined;
      const diagram = await diagramOf(taskMachine);
      return {
        kind: 'task',
        ...(runtime !== undefined && { runtime }),
        queue,
        item: taskInfo(record),
        ...(diagram !== undefined && { diagram }),
        states: [record.state],
      };
    },

    async sagas({ runtime, saga, query }) {
      const q = listQuery(`saga('${saga}').list`, { limit: ROWS_SHOWN, ...query });
      const { store } = resolve('saga', runtime, saga);
      // One more than asked tells whether a next page exists.
      const records = await store.listSagas(saga, { ...q, limit: q.limit + 1 });
      const page = records.slice(0, q.limit);
      const items: OpsSagaRow[] = page.map((r) => {
        const info = sagaInfo(r);
        return {
          id: r.id,
          status: r.status,
          state: info.state,
          version: r.version,
          createdAt: r.createdAt,
          updatedAt: r.updatedAt,
        };
      });
      const last = page.at(-1);
      return withNext(items, records.length > q.limit && last ? encodeCursor(last) : undefined);
    },

    async saga(runtime, saga, id) {
      const { store, machine } = resolve('saga', runtime, saga);
      const record = await store.loadSaga(saga, id);
      if (!record) return undefined;
      const diagram = machine && (await diagramOf(machine));
      const detail: OpsDetail = {
        kind: 'saga',
        ...(runtime !== undefined && { runtime }),
        saga,
        item: sagaInfo(record),
        ...(diagram !== undefined && { diagram }),
        states: leafStates(JSON.parse(record.state)),
      };
      return detail;
    },
  };
}

function withNext<T>(items: T[], next: string | undefined): OpsPage<T> {
  return next === undefined ? { items } : { items, next };
}
