import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { embeddedAssetsSource, generatedPath } from '../../scripts/embed-viewer.js';

describe('embedded viewer assets', () => {
  // The server serves the generated module, not src/viewer/assets/: an edit there without `npm run embed` would not show.
  it('src/viewer/assets.generated.ts matches src/viewer/assets/ (run `npm run embed` after editing them)', () => {
    expect(readFileSync(generatedPath, 'utf8')).toBe(embeddedAssetsSource());
  });
});
