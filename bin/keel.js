#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build` (run by `prepare` before packing): no TypeScript loader at run time.
await import('../dist/cli/main.js');
