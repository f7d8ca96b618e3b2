import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KEEL_ERROR_CODES } from '../../src/core/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ERRORS_FILE = 'src/core/errors.ts';

interface Source {
  file: string;
  text: string;
}

function sources(dir: string): Source[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => {
      const path = join(e.parentPath, e.name);
      return { file: relative(root, path), text: readFileSync(path, 'utf8') };
    });
}

const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length;

/** Where a code is chosen: `new KeelError(<code>` and the `super(<code>` of a class that extends KeelError directly. */
function codeSites(src: Source[]): { where: string; code: string | undefined }[] {
  const sites: { where: string; code: string | undefined }[] = [];
  const literal = /^\s*'([A-Z_]+)'/;
  for (const { file, text } of src) {
    for (const m of text.matchAll(/new KeelError\(/g)) {
      const at = m.index + m[0].length;
      sites.push({ where: `${file}:${lineOf(text, m.index)}`, code: literal.exec(text.slice(at))?.[1] });
    }
    for (const m of text.matchAll(/class \w+ extends KeelError\b/g)) {
      // Without its own super('CODE') call the subclass takes a code from every `new`, where no scan can follow it.
      const next = text.slice(m.index + m[0].length).search(/\nclass |\nexport class /);
      const body = next < 0 ? text.slice(m.index) : text.slice(m.index, m.index + m[0].length + next);
      const call = body.indexOf('super(');
      sites.push({
        where: `${file}:${lineOf(text, m.index + Math.max(call, 0))}`,
        code: call < 0 ? undefined : literal.exec(body.slice(call + 'super('.length))?.[1],
      });
    }
  }
  return sites;
}

/** The members of `type KeelErrorCode = 'A' | 'B' ...;` in errors.ts. */
function unionMembers(text: string): string[] {
  const decl = /export type KeelErrorCode =([^;]+);/.exec(text);
  if (!decl) throw new Error(`${ERRORS_FILE} declares no KeelErrorCode union`);
  return [...decl[1]!.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]!);
}

describe('KeelErrorCode lists every code that is thrown (issue #11)', () => {
  const src = sources('src');
  const sites = codeSites(src);
  const listed = [...KEEL_ERROR_CODES];

  it('finds the places where codes are chosen', () => {
    // A scan that finds nothing would pass every check below.
    expect(sites.length).toBeGreaterThan(20);
  });

  it('every code is a literal at the place it is chosen, so this test can see it', () => {
    const hidden = sites.filter((s) => s.code === undefined).map((s) => s.where);
    expect(hidden, 'pass the code as a string literal (or give the helper its own KeelError subclass)').toEqual([]);
  });

  it('every thrown code is in KEEL_ERROR_CODES', () => {
    const missing = sites
      .filter((s) => s.code !== undefined && !listed.includes(s.code))
      .map((s) => `${s.where} ${s.code}`);
    expect(missing, `add these codes to KEEL_ERROR_CODES in ${ERRORS_FILE}`).toEqual([]);
  });

  it('every listed code is thrown somewhere (no dead codes)', () => {
    const thrown = new Set(sites.map((s) => s.code));
    expect(listed.filter((code) => !thrown.has(code))).toEqual([]);
  });

  it('KEEL_ERROR_CODES and the KeelErrorCode union hold the same codes, once each', () => {
    const union = unionMembers(readFileSync(join(root, ERRORS_FILE), 'utf8'));
    expect(new Set(listed).size, 'duplicate in KEEL_ERROR_CODES').toBe(listed.length);
    expect([...listed].sort()).toEqual([...union].sort());
  });
});
