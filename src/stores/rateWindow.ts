import type { RateLimit } from './store.js';

/** Starts still allowed under `limit` in the window ending at `now`, given the recorded start times. */
export function startsLeft(starts: readonly number[], limit: RateLimit, now: number): number {
  let recent = 0;
  for (const t of starts) if (t > now - limit.perMs) recent++;
  return limit.max - recent;
}

/** `starts` plus `n` starts at `now`, keeping only the ones that can still count against `limit`. */
export function withStarts(starts: readonly number[], limit: RateLimit, now: number, n: number): number[] {
  const all = starts.filter((t) => t > now - limit.perMs);
  for (let i = 0; i < n; i++) all.push(now);
  return all.slice(-limit.max);
}
