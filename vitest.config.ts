import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  // package.json `exports` point at the build in dist/; tests and benches run the sources, unbuilt.
  resolve: {
    alias: [
      { find: /^keel\/testing$/, replacement: src('testing/index.ts') },
      { find: /^keel$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests that spawn bin/keel.js run the compiled CLI: build dist/ first when the sources are newer.
    globalSetup: ['test/setup/build.ts'],
    // Model-based suites print their coverage; keep that output visible.
    silent: false,
  },
});
