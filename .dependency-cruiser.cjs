/**
 * keel's layer rules (docs/ARCHITECTURE.md), checked by `npm run deps` as part of `npm test`.
 * Layers only look down: core <- machines <- actors <- runtime <- viewer/cli/diagram/testing, with
 * stores beside actors behind one contract. Every rule is an error unless it names a temporary exception.
 * Paths are regular expressions over paths relative to the repository root.
 */

// A folder `X/` and everything under it.
const under = (...dirs) => dirs.map((d) => `^src/${d}/`);

const CONTRACT = ['^src/stores/store\\.ts$', '^src/stores/sagaStore\\.ts$'];
const ABOVE_RUNTIME = under('viewer', 'cli', 'diagram', 'testing', 'telemetry');
const ENTRY_FILES = '^src/[^/]+\\.ts$';
const BACKENDS = '^src/stores/(memory|sqlite|postgres)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Imports only point down; a cycle (type-only imports included) means two modules are one.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-circular-values',
      severity: 'error',
      comment: 'A cycle of value imports breaks ESM evaluation order; no exception tolerates one.',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import the checker cannot resolve is an edge no other rule can see.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'core-is-a-leaf',
      severity: 'error',
      comment: 'src/core is shared by every layer and imports nothing of keel outside itself.',
      from: { path: '^src/core/' },
      to: { path: '^(src|test|bench|examples|scripts)/', pathNot: '^src/core/' },
    },
    {
      name: 'machines-are-pure',
      severity: 'error',
      comment: 'A machine imports only machines, core and xstate: no stores, no I/O, no node built-ins.',
      from: { path: '^src/machines/' },
      to: { pathNot: ['^src/(machines|core)/', '(^|/)node_modules/xstate/'] },
    },
    {
      name: 'stores-below-actors',
      severity: 'error',
      comment: 'Stores import only stores and core.',
      from: { path: '^src/stores/' },
      to: { path: '^(src|test|bench|examples|scripts)/', pathNot: '^src/(stores|core)/' },
    },
    {
      name: 'store-contract-is-abstract',
      severity: 'error',
      comment: 'The contract (store.ts, sagaStore.ts) knows no backend and no SQL helper.',
      from: { path: CONTRACT },
      to: { path: ['^src/stores/sql/', BACKENDS] },
    },
    {
      name: 'sql-helpers-know-no-backend',
      severity: 'error',
      comment: 'src/stores/sql is shared by sqlite and postgres; it must not lean on either.',
      from: { path: '^src/stores/sql/' },
      to: { path: BACKENDS },
    },
    {
      name: 'backends-are-independent',
      severity: 'error',
      comment: 'A store backend never imports another backend.',
      from: { path: '^src/stores/(memory|sqlite|postgres)/' },
      to: { path: BACKENDS, pathNot: '^src/stores/$1/' },
    },
    {
      name: 'memory-store-has-no-sql',
      severity: 'error',
      comment: 'The SQL helpers are for the SQL backends only.',
      from: { path: '^src/stores/memory/' },
      to: { path: '^src/stores/sql/' },
    },
    {
      name: 'actor-host-is-narrow',
      severity: 'error',
      comment: 'host.ts is the only thing an actor gets from the runtime: core and the store contract.',
      from: { path: '^src/actors/host\\.ts$' },
      to: { path: '^(src|test|bench|examples|scripts)/', pathNot: ['^src/core/', ...CONTRACT] },
    },
    {
      name: 'actors-see-host-machines-core-contract',
      severity: 'error',
      comment:
        'src/actors/<pattern> imports its own folder, host.ts, machines, core and the store contract; ' +
        'never a concrete store or another pattern (except the shared topic validation in bus/topics.ts).',
      from: { path: '^src/actors/([^/]+)/' },
      to: {
        path: '^(src|test|bench|examples|scripts)/',
        pathNot: [
          '^src/actors/$1/',
          '^src/actors/host\\.ts$',
          '^src/actors/bus/topics\\.ts$',
          '^src/(machines|core)/',
          ...CONTRACT,
        ],
      },
    },
    {
      name: 'nothing-below-imports-runtime',
      severity: 'error',
      comment: 'The runtime wires the layers below it; they never reach back up to it.',
      from: { path: under('core', 'machines', 'actors', 'stores') },
      to: { path: '^src/runtime/' },
    },
    {
      name: 'core-layers-do-not-import-the-top',
      severity: 'error',
      comment: 'viewer, cli, diagram, testing, telemetry and the entry files (index.ts, createRuntime.ts) sit on top.',
      from: { path: under('core', 'machines', 'actors', 'stores', 'runtime') },
      to: { path: [...ABOVE_RUNTIME, ENTRY_FILES] },
    },
    {
      name: 'src-does-not-import-tests-or-tools',
      severity: 'error',
      comment: 'Production code never depends on test/, bench/ or scripts/.',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'src-does-not-import-examples',
      severity: 'error',
      comment: 'examples/ use the public API; src never imports them.',
      from: { path: '^src/' },
      to: { path: '^examples/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // `import type` is an edge too: a type-only cycle still ties two modules together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
