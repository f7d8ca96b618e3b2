import { parsePattern, parseTopic } from './topics.js';

/** Anything stored in the index; `seq` orders delivery (oldest subscription first). */
export interface Indexed {
  readonly seq: number;
  /** False when the subscriber cannot observe the envelope (see `Route.wantsEvent`). */
  readonly wantsEvent: boolean;
}

/** What a publish on one topic reaches; cached per topic until the subscriptions change. */
export interface Route<S> {
  /** Matching subscriptions, oldest first. */
  readonly subs: readonly S[];
  /**
   * True when any of them can observe the envelope. When none can, the bus
   * makes no envelope and reads no clock for the publish.
   */
  readonly wantsEvent: boolean;
}

interface TrieNode<S> {
  readonly children: Map<string, TrieNode<S>>;
  star: TrieNode<S> | undefined;
  /** Subscriptions whose pattern ends at this node. */
  here: S[];
  /** Subscriptions whose pattern ends with `>` below this node. */
  rest: S[];
}

const MAX_CACHED_TOPICS = 10_000;

/**
 * Subscriptions by topic. Exact patterns live in a map, wildcard patterns in a
 * token trie; the resolved list for a published topic is cached until the
 * subscriptions change, so a publish is one map lookup whatever the patterns.
 */
export class TopicIndex<S extends Indexed> {
  private readonly exact = new Map<string, S[]>();
  private readonly root: TrieNode<S> = newNode();
  private wildcards = 0;
  private readonly cache = new Map<string, Route<S>>();

  /** Adds a subscription; throws `INVALID_TOPIC` for a bad pattern. */
  add(pattern: string, sub: S): void {
    const tokens = parsePattern(pattern);
    if (isExact(tokens)) {
      const list = this.exact.get(pattern);
      this.exact.set(pattern, list ? [...list, sub] : [sub]);
    } else {
      const rest = endsWithRest(tokens);
      let node = this.root;
      for (const token of rest ? tokens.slice(0, -1) : tokens) {
        node = token === '*' ? (node.star ??= newNode()) : child(node, token);
      }
      if (rest) node.rest = [...node.rest, sub];
      else node.here = [...node.here, sub];
      this.wildcards++;
    }
    this.cache.clear();
  }

  /** Removes a subscription added with the same pattern; a no-op when absent. */
  remove(pattern: string, sub: S): void {
    const tokens = parsePattern(pattern);
    if (isExact(tokens)) {
      const list = this.exact.get(pattern);
      if (!list?.includes(sub)) return;
      const left = list.filter((s) => s !== sub);
      if (left.length === 0) this.exact.delete(pattern);
      else this.exact.set(pattern, left);
    } else {
      const rest = endsWithRest(tokens);
      const path = rest ? tokens.slice(0, -1) : tokens;
      // nodes[i] is the node reached after path[0..i-1]; nodes[0] is the root.
      const nodes: TrieNode<S>[] = [this.root];
      let node: TrieNode<S> = this.root;
      for (const token of path) {
        const next: TrieNode<S> | undefined = token === '*' ? node.star : node.children.get(token);
        if (!next) return;
        nodes.push(next);
        node = next;
      }
      const list = rest ? node.rest : node.here;
      if (!list.includes(sub)) return;
      const left = list.filter((s) => s !== sub);
      if (rest) node.rest = left;
      else node.here = left;
      this.wildcards--;
      prune(nodes, path);
    }
    this.cache.clear();
  }

  /** The subscriptions a publish on `topic` reaches, in subscription order; throws `INVALID_TOPIC`. */
  match(topic: string): Route<S> {
    const cached = this.cache.get(topic);
    if (cached !== undefined) return cached;
    const tokens = parseTopic(topic);
    const exact = this.exact.get(topic);
    let found: S[];
    if (this.wildcards === 0) {
      found = exact ?? [];
    } else {
      found = exact ? [...exact] : [];
      collect(this.root, tokens, 0, found);
      // The exact list is in order already; only wildcard matches need sorting in.
      if (found.length > (exact?.length ?? 0)) found.sort(bySeq);
    }
    const route: Route<S> = { subs: found, wantsEvent: found.some((s) => s.wantsEvent) };
    if (this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
    this.cache.set(topic, route);
    return route;
  }

  /** How many subscriptions are held. */
  get size(): number {
    let n = this.wildcards;
    for (const list of this.exact.values()) n += list.length;
    return n;
  }

  /** @internal trie nodes plus exact-topic entries held, the root included; tests check that removals give memory back. */
  nodeCount(): number {
    return this.exact.size + countNodes(this.root);
  }
}

/** A pattern without wildcards: it lives in the exact map. */
function isExact(tokens: string[]): boolean {
  return !tokens.includes('*') && !tokens.includes('>');
}

/** A `>` pattern (parsePattern allows `>` only last): it ends in the `rest` list of the node before it. */
function endsWithRest(tokens: string[]): boolean {
  return tokens[tokens.length - 1] === '>';
}

function newNode<S>(): TrieNode<S> {
  return { children: new Map(), star: undefined, here: [], rest: [] };
}

function child<S>(node: TrieNode<S>, token: string): TrieNode<S> {
  let next = node.children.get(token);
  if (!next) {
    next = newNode();
    node.children.set(token, next);
  }
  return next;
}

/**
 * Detaches the nodes along `path` that hold nothing any more, deepest first,
 * stopping at the first one still in use. Without this, unique patterns that
 * come and go (one per request or tenant) would each leave a node behind forever.
 */
function prune<S>(nodes: TrieNode<S>[], path: string[]): void {
  for (let i = path.length; i > 0; i--) {
    const node = nodes[i] as TrieNode<S>;
    if (!isEmpty(node)) return;
    const parent = nodes[i - 1] as TrieNode<S>;
    const token = path[i - 1] as string;
    if (token === '*') parent.star = undefined;
    else parent.children.delete(token);
  }
}

function isEmpty<S>(node: TrieNode<S>): boolean {
  return node.here.length === 0 && node.rest.length === 0 && node.star === undefined && node.children.size === 0;
}

function countNodes<S>(node: TrieNode<S>): number {
  let n = 1;
  for (const next of node.children.values()) n += countNodes(next);
  if (node.star) n += countNodes(node.star);
  return n;
}

function collect<S>(node: TrieNode<S>, tokens: string[], i: number, out: S[]): void {
  if (i === tokens.length) {
    out.push(...node.here);
    return;
  }
  // `>` needs one or more tokens after its node, so it matches whenever tokens remain.
  out.push(...node.rest);
  const next = node.children.get(tokens[i] as string);
  if (next) collect(next, tokens, i + 1, out);
  if (node.star) collect(node.star, tokens, i + 1, out);
}

function bySeq(a: Indexed, b: Indexed): number {
  return a.seq - b.seq;
}
