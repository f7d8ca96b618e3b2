import type { Store } from './store.js';

/** The default store: everything lives in this process and nothing survives it. */
export function memoryStore(): Store {
  return {
    kind: 'memory',
    async open() {},
    async close() {},
  };
}
