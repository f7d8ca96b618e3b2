import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/index.js';
import { leafStates, ViewerHub } from '../../src/viewer/hub.js';

describe('ViewerHub', () => {
  it('reads leaf states from snapshot values', () => {
    expect(leafStates('open')).toEqual(['open']);
    expect(leafStates({ running: 'working' })).toEqual(['running.working']);
    expect(leafStates({ a: { b: 'c' }, d: 'e' })).toEqual(['a.b.c', 'd.e']);
    expect(leafStates(undefined)).toEqual([]);
  });

  it('keeps the newest finished machine actors only, and forgets finished step actors at once', async () => {
    const hub = new ViewerHub({ finished: 2 });
    const rt = createRuntime({ inspect: () => {} });
    const label = hub.addRuntime('shop', []);
    rt.system.system.inspect((ev) => hub.inspect(label, ev));
    const pay = rt.saga('pay', { steps: [{ name: 'charge', run: async () => 1 }] });
    await rt.start();
    for (const id of ['s1', 's2', 's3']) await pay.execute({}, { id });
    const hello = hub.hello();
    const ids = hello.kind === 'hello' ? hello.actors.map((a) => a.id) : [];
    expect(ids.filter((id) => id.startsWith('saga.'))).toEqual(['saga.pay.s2', 'saga.pay.s3']);
    // The step runs (`run.charge`, promise actors) ended: nothing of them is left.
    expect(ids.some((id) => id.startsWith('run.'))).toBe(false);
    await rt.stop();
    hub.close();
  });

  it('batches a burst of changes into one message per actor', async () => {
    const hub = new ViewerHub();
    const rt = createRuntime();
    const label = hub.addRuntime('shop', []);
    rt.system.system.inspect((ev) => hub.inspect(label, ev));
    const sms = rt.breaker('sms');
    const messages: string[] = [];
    hub.listen((m) => {
      if (m.kind === 'actor' && m.actor.id === 'breaker.sms') messages.push(m.actor.states.join());
    });
    for (let i = 0; i < 5; i++) {
      sms.isolate();
      sms.reset();
    }
    sms.isolate();
    await new Promise((r) => setTimeout(r, 60));
    expect(messages).toEqual(['isolated']);
    await rt.stop();
    hub.close();
  });
});
