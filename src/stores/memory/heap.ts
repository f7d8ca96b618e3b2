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

/**
 * A binary min-heap of ids ordered by `(a, b, id)`: the memory store's due
 * tasks in claim order, `(priority, runAt, id)` without a group and
 * `(priority, id, id)` within one.
 */
export class KeyHeap {
  private readonly a: number[] = [];
  private readonly b: number[] = [];
  private readonly ids: number[] = [];

  get size(): number {
    return this.ids.length;
  }

  push(a: number, b: number, id: number): void {
    let i = this.ids.length;
    this.a.push(a);
    this.b.push(b);
    this.ids.push(id);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes and returns the smallest entry's id. */
  pop(): number | undefined {
    const n = this.ids.length;
    if (n === 0) return undefined;
    const top = this.ids[0];
    this.swap(0, n - 1);
    this.a.pop();
    this.b.pop();
    this.ids.pop();
    const len = n - 1;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < len && this.less(l, m)) m = l;
      if (r < len && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }

  private less(i: number, j: number): boolean {
    const a = this.a;
    const b = this.b;
    return a[i]! < a[j]! || (a[i] === a[j] && (b[i]! < b[j]! || (b[i] === b[j] && this.ids[i]! < this.ids[j]!)));
  }

  private swap(i: number, j: number): void {
    swap(this.a, this.b, i, j);
    const t = this.ids[i]!;
    this.ids[i] = this.ids[j]!;
    this.ids[j] = t;
  }
}
