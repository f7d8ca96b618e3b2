/** A binary min-heap ordered by `(at, seq)`: the memory store's delayed tasks. */
export class TimeHeap {
  private readonly at: number[] = [];
  private readonly seq: number[] = [];

  /** The earliest time, or undefined when empty. */
  peekAt(): number | undefined {
    return this.at[0];
  }

  push(at: number, seq: number): void {
    const a = this.at;
    const s = this.seq;
    let i = a.length;
    a.push(at);
    s.push(seq);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i]!, s[i]!, a[p]!, s[p]!)) break;
      swap(a, s, i, p);
      i = p;
    }
  }

  /** Removes and returns the earliest entry's `seq`. */
  pop(): number | undefined {
    const a = this.at;
    const s = this.seq;
    if (a.length === 0) return undefined;
    const top = s[0];
    const lastA = a.pop()!;
    const lastS = s.pop()!;
    if (a.length > 0) {
      a[0] = lastA;
      s[0] = lastS;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, s[l]!, a[m]!, s[m]!)) m = l;
        if (r < a.length && less(a[r]!, s[r]!, a[m]!, s[m]!)) m = r;
        if (m === i) break;
        swap(a, s, i, m);
        i = m;
      }
    }
    return top;
  }
}

function less(a1: number, s1: number, a2: number, s2: number): boolean {
  return a1 < a2 || (a1 === a2 && s1 < s2);
}

function swap(a: number[], s: number[], i: number, j: number): void {
  const ta = a[i]!;
  a[i] = a[j]!;
  a[j] = ta;
  const ts = s[i]!;
  s[i] = s[j]!;
  s[j] = ts;
}
