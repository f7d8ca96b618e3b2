/**
 * `npm run docs`: regenerates the machine diagrams in README.md (between the
 * diagram markers) from the machine definitions. `--check` only reports drift.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { currentBlock, diagramsBlock, MissingMarkersError, withBlock } from '../src/diagram/readme.js';

const path = fileURLToPath(new URL('../README.md', import.meta.url));
const check = process.argv.includes('--check');
try {
  const readme = readFileSync(path, 'utf8');
  const block = diagramsBlock();
  if (currentBlock(readme) === block) {
    console.log('README.md: diagrams are up to date');
  } else if (check) {
    console.error('README.md: diagrams are out of date; run `npm run docs`');
    process.exitCode = 1;
  } else {
    writeFileSync(path, withBlock(readme, block));
    console.log('README.md: diagrams regenerated');
  }
} catch (error) {
  if (!(error instanceof MissingMarkersError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
