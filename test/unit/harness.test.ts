import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compare, median, ratio, writeResults } from '../../bench/harness.js';

describe('bench harness', () => {
  it('median takes the middle of odd lists and the mean of the middle pair of even ones, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    const input = [3, 1, 2];
    median(input);
    expect(input).toEqual([3, 1, 2]);
    expect(() => median([])).toThrow();
  });

  it('ratio is keel / anchor, rounded to 3 decimals, 0 for an anchor that measured nothing', () => {
    expect(ratio(200, 100)).toBe(2);
    expect(ratio(1, 3)).toBe(0.333);
    expect(ratio(5, 0)).toBe(0);
  });

  it('compare measures every contender, one row per anchor, and runs the check', async () => {
    let keel = 0;
    let a = 0;
    let b = 0;
    let checked = false;
    const rows = await compare({
      name: 'case',
      keel: () => keel++,
      vs: { a: () => a++, b: async () => b++ },
      target: { a: 1.5 },
      runs: 3,
      timeMs: 5,
      warmupMs: 1,
      check: () => {
        checked = true;
      },
    });
    expect(checked).toBe(true);
    expect(keel > 0 && a > 0 && b > 0).toBe(true);
    expect(rows.map((r) => [r.name, r.vs, r.target])).toEqual([
      ['case', 'a', 1.5],
      ['case', 'b', undefined],
    ]);
    for (const r of rows) {
      expect(r.opsPerSec).toBeGreaterThan(0);
      expect(r.ratio).toBe(ratio(r.opsPerSec, r.vsOpsPerSec));
    }
  });

  it('writes exactly { node, cpu, date, rows } with the five row fields', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-'));
    try {
      const path = writeResults(
        'x',
        [{ name: 'n', opsPerSec: 2, vs: 'v', vsOpsPerSec: 1, ratio: 2, target: 1, lowerIsBetter: false }],
        dir,
      );
      const json = JSON.parse(readFileSync(path, 'utf8'));
      expect(Object.keys(json)).toEqual(['node', 'cpu', 'date', 'rows']);
      expect(json.node).toBe(process.version);
      expect(json.cpu).toMatch(/ x \d+$/);
      expect(json.rows).toEqual([{ name: 'n', opsPerSec: 2, vs: 'v', vsOpsPerSec: 1, ratio: 2 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
