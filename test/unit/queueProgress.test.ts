import { expect, it } from 'vitest';
import { createRuntime, memoryStore } from '../../src/index.js';

// Regression: the first progress value is written at once; a settle that ran while that write was still in
// flight moved the task to history first, and the progress was lost (seen on Postgres, two pool connections).
it('a settle waits for the progress write in flight: the finished task keeps its progress', async () => {
  const store = memoryStore();
  const write = store.progress.bind(store);
  store.progress = async (...args) => {
    await new Promise((r) => setTimeout(r, 50));
    return write(...args);
  };
  const rt = createRuntime({ store });
  const q = rt.queue('p', {
    handler: async (t) => {
      t.progress({ step: 1 });
      return 'done';
    },
  });
  await rt.start();
  try {
    const { id } = await q.enqueue({});
    await q.drain();
    expect(await q.get(id)).toMatchObject({ state: 'succeeded', result: 'done', progress: { step: 1 } });
  } finally {
    await rt.stop();
  }
});
