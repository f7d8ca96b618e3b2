import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, NonRetryableError, postgresStore, type Runtime } from '../../src/index.js';
import { postgresFleetView } from '../../src/stores/postgres/fleetView.js';
import { fleetOps } from '../../src/viewer/fleetOps.js';
import { ViewerHub } from '../../src/viewer/hub.js';
import { serveViewer, type ViewerServer } from '../../src/viewer/server.js';
import { freshSchemas, PG_URL, pgAvailable } from '../fixtures/pg.js';
import { rawRequest } from './http.js';

const fresh = freshSchemas('fleetbrowse');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!pgAvailable)('the fleet console lists and details (no app code)', () => {
  it('lists a queue and the saga names of the store, newest first, and shows a task and a run without a saga diagram', async () => {
    const schema = fresh();
    // An app ran and stopped: the console reads what it left in the store.
    const rt: Runtime = createRuntime({ store: postgresStore({ connectionString: PG_URL, schema }) });
    const mail = rt.queue('mail', {
      handler: async (task) => {
        if ((task.payload as { n: number }).n === 2) throw new NonRetryableError('bounced');
      },
    });
    const order = rt.saga('order', { steps: [{ name: 'reserve', run: async () => 'r' }] });
    await rt.start();
    const ids = [];
    for (let n = 1; n <= 3; n++) ids.push((await mail.enqueue({ n }, { key: `k${n}` })).id);
    await mail.drain();
    await order.execute({}, { id: 'o-1' });
    await order.execute({}, { id: 'o-2' });
    await rt.stop();

    const store = postgresStore({ connectionString: PG_URL, schema, poolSize: 2 });
    await store.open();
    const view = postgresFleetView({ connectionString: PG_URL, schema });
    const server: ViewerServer = await serveViewer(new ViewerHub(), { port: 0, ops: fleetOps(view, store) });
    cleanups.push(
      () => store.close(),
      () => view.close(),
      () => server.close(),
    );
    const get = async (path: string) => {
      const a = await rawRequest(new URL(path, server.url).href, { headers: { host: new URL(server.url).host } });
      return { status: a.status, body: JSON.parse(a.body) };
    };
    const ops = await get('/ops');
    expect(ops.body.sagaNames).toEqual([{ saga: 'order' }]);
    const tasks = await get('/ops/tasks?queue=mail&order=newest');
    expect(tasks.body.items.map((t: { id: string }) => t.id)).toEqual([...ids].reverse());
    const dead = await get('/ops/tasks?queue=mail&state=dead&key=k2');
    expect(dead.body.items).toEqual([expect.objectContaining({ id: ids[1], state: 'dead' })]);
    const one = await get(`/ops/task?queue=mail&id=${ids[1]}`);
    expect(one.body).toMatchObject({ kind: 'task', states: ['dead'], item: { payload: { n: 2 }, attempt: 1 } });
    expect(one.body.diagram).toContain('data-state="dead"');
    const runs = await get('/ops/sagas?saga=order&limit=1');
    expect(runs.body.items.map((r: { id: string }) => r.id)).toEqual(['o-2']);
    const rest = await get(`/ops/sagas?saga=order&limit=1&after=${encodeURIComponent(runs.body.next)}`);
    expect(rest.body.items.map((r: { id: string }) => r.id)).toEqual(['o-1']);
    const run = await get('/ops/saga?saga=order&id=o-1');
    expect(run.body).toMatchObject({ kind: 'saga', states: ['completed'], item: { id: 'o-1', status: 'completed' } });
    expect(run.body.item.history.at(-1).state).toBe('completed');
    expect(run.body.diagram).toBeUndefined();
    expect((await get('/ops/saga?saga=order&id=nope')).status).toBe(404);
    expect((await get('/ops/tasks?queue=mail&order=sideways')).status).toBe(400);
  });
});
