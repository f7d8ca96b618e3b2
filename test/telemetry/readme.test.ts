import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/index.js';
import { parseProm } from './promText.js';

describe('README: Metrics and tracing', () => {
  it('lists every metric keel exports, and no other', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Metrics and tracing'), readme.indexOf('## The machines'));
    const documented = [...section.matchAll(/^\| `(keel_[a-z_]+)` \|/gm)].map((m) => m[1]).sort();
    const rt = createRuntime({ metrics: true });
    const exported = [...parseProm((await rt.metrics?.scrape()) as string).types.keys()].sort();
    expect(documented).toEqual(exported);
  });
});
