import { errorData } from '../../core/json.js';
import type { SagaHistoryEntry } from '../../stores/sagaStore.js';

export type { SagaHistoryEntry } from '../../stores/sagaStore.js';

/**
 * At most this many entries are kept per saga: the first (where it started)
 * and the newest others. A step retried without end would otherwise grow its
 * record at every attempt.
 */
export const MAX_HISTORY = 500;

/**
 * A machine state value as one dotted path: `running.createOrder`,
 * `completed`; the regions of a parallel group in parentheses, in step order:
 * `running.reserve(stock.run, card.done)`.
 */
export function stateName(value: unknown): string {
  return path(value).replace(/\.\(/g, '(');
}

function path(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') return String(value);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [k, v] = entries[0] as [string, unknown];
    return `${k}.${path(v)}`;
  }
  return `(${entries.map(([k, v]) => `${k}.${path(v)}`).join(', ')})`;
}

/**
 * Appends what the saga reached to its history, unless it is where the last
 * entry already is (the same state and attempt: a checkpoint that only moved
 * a deadline). Keeps at most `MAX_HISTORY` entries (the first and the newest).
 */
export function appendHistory(
  history: SagaHistoryEntry[],
  state: unknown,
  at: number,
  attempt: number | undefined,
  error: unknown,
): void {
  const name = stateName(state);
  const last = history.at(-1);
  if (last && last.state === name && last.attempt === attempt) return;
  const entry: SagaHistoryEntry = { state: name, at };
  if (attempt !== undefined) entry.attempt = attempt;
  if (error !== undefined && error !== null) entry.error = errorData(error);
  history.push(entry);
  if (history.length > MAX_HISTORY) history.splice(1, history.length - MAX_HISTORY);
}

/** The history stored with a record (absent on records written before history was kept). */
export function parseHistory(json: string | undefined): SagaHistoryEntry[] {
  if (json === undefined) return [];
  const parsed = JSON.parse(json) as unknown;
  return Array.isArray(parsed) ? (parsed as SagaHistoryEntry[]) : [];
}
