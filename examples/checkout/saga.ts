// The checkout example's saga; it lives in src/cli/scenarios/ so the packaged `keel demo` ships it.
export * from '../../src/cli/scenarios/checkout/saga.js';
