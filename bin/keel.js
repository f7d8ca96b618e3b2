#!/usr/bin/env node
// keel ships TypeScript sources: tsx's loader lets Node run them, then the CLI takes over.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
