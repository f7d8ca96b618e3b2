import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
import { watchNewRuntimes } from '../../src/runtime/createRuntime.js';
import type { ViewerMessage } from '../../src/viewer/hub.js';

const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.stop();
});

describe('createRuntime({ viewer })', () => {
  it('serves the viewer while the runtime runs, with sagas as visible actors', async () => {
    const rt = createRuntime({ viewer: { port: 0 } });
    runtimes.push(rt);
    expect(rt.inspected).toBe(true);
    const saga = rt.saga('pay', { steps: [{ name: 'charge', run: async () => 1 }] });
    await rt.start();
    const url = rt.viewer?.url as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await saga.execute({}, { id: 'p1' });
    await new Promise((r) => setTimeout(r, 60));
    const state = (await (await fetch(`${url}state`)).json()) as Extract<ViewerMessage, { kind: 'hello' }>;
    expect(state.actors.map((a) => a.id)).toEqual(expect.arrayContaining(['runtime', 'bus', 'saga.pay.p1']));
    await rt.stop();
    await expect(fetch(url)).rejects.toThrow();
  });

  it('refuses bad viewer options with INVALID_OPTIONS', () => {
    expect(() => createRuntime({ viewer: { port: 1.5 } })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
    expect(() => createRuntime({ viewer: 'yes' as never })).toThrow(/viewer/);
  });

  it('without viewer or watcher, a runtime is not inspected and has no viewer', () => {
    const rt = createRuntime();
    expect(rt.inspected).toBe(false);
    expect(rt.viewer).toBeUndefined();
  });

  it('watchNewRuntimes sees every runtime created while it watches (and makes it inspected)', () => {
    const seen: Runtime[] = [];
    const stop = watchNewRuntimes((rt) => seen.push(rt));
    const a = createRuntime();
    stop();
    const b = createRuntime();
    expect(seen).toEqual([a]);
    expect(a.inspected).toBe(true);
    expect(b.inspected).toBe(false);
  });
});
