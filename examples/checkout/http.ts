// The checkout example's http; it lives in src/cli/scenarios/ so the packaged `keel demo` ships it.
export * from '../../src/cli/scenarios/checkout/http.js';
