import type Database from 'better-sqlite3';
import { startsLeft, withStarts } from '../rateWindow.js';
import { finishedJson } from '../sql/rows.js';
import type { ClaimRequest } from '../store.js';
import { prepareTurnStatements } from './turnStatements.js';

export { CLAIMED } from './turnStatements.js';

/** Groups whose candidates one statement reads, at first: small, so a backlog of each is not read at once. */
const FIRST_CHUNK = 8;
/** The most groups one statement reads. */
const MAX_CHUNK = 512;

interface TurnRow {
  grp: string;
  served: number;
}

interface Candidate {
  pos: number;
  id: number;
  priority: number;
}

/**
 * The claim of a queue with groups or limits, as one IMMEDIATE transaction:
 * groups take turns (least recently served first, tasks without a group as the
 * group ''), each limit is counted and applied before anything is taken.
 * Groups are read and written a chunk at a time (`turnStatements.ts`), never
 * one statement per group.
 */
export function prepareTurns(db: Database.Database): (queue: string, request: ClaimRequest) => unknown[] {
  const s = prepareTurnStatements(db);

  // The caller runs it inside its own IMMEDIATE transaction.
  return (queue: string, r: ClaimRequest): unknown[] => {
    const { limit, now, leaseUntil, token } = r;
    const limits = r.limits ?? {};
    const { groupConcurrency, groupRateLimit } = limits;
    let budget = limit;
    if (limits.globalConcurrency !== undefined) {
      const finished = finishedJson(r.finished);
      budget = Math.min(budget, limits.globalConcurrency - (s.activeCount.get({ queue, finished }) as { n: number }).n);
    }
    let queueStarts: number[] = [];
    if (limits.rateLimit) {
      queueStarts = JSON.parse((s.limitsRow.get(queue) as { starts: string } | undefined)?.starts ?? '[]');
      budget = Math.min(budget, startsLeft(queueStarts, limits.rateLimit, now));
    }
    if (budget <= 0) return [];
    const wanted = budget;
    s.ensureUngrouped.run(queue);
    const base = (s.nextServed.get(queue) as { n: number }).n;
    const out: unknown[] = [];
    const picked: number[] = [];
    const visits: [string, string | null][] = [];
    const dry: string[] = [];
    let named = 0;
    let namedTaken = 0;
    // Each group with live work gets at most one visit per claim; a visit sends it to the back of the turns.
    let left = limit * 2 + 16;
    let after: { served: number; grp: string } = { served: Number.MIN_SAFE_INTEGER, grp: '' };
    while (budget > 0 && left > 0) {
      // Sized by what the groups visited so far yielded: few statements for many small groups, little read ahead
      // for groups with large backlogs.
      const size = named === 0 ? FIRST_CHUNK : Math.ceil((budget * named) / Math.max(namedTaken, 1));
      const n = Math.min(left, MAX_CHUNK, Math.max(FIRST_CHUNK, size));
      const chunk = s.turns.all({ queue, ...after, n }) as TurnRow[];
      if (chunk.length === 0) break;
      left -= chunk.length;
      after = chunk[chunk.length - 1]!;
      // Only the tasks without a group (a queue with limits but no groups): nothing to read per group.
      const grouped = chunk.length > 1 || chunk[0]!.grp !== '';
      const groups = JSON.stringify(chunk.map((g) => g.grp));
      // Fetched per group: at most what the claim or the group's limit could take of it.
      const cap = Math.min(budget, groupConcurrency ?? budget);
      const due = candidatesByPos(grouped ? (s.candidates.all({ queue, groups, now, cap }) as Candidate[]) : []);
      const held =
        grouped && groupConcurrency !== undefined ? (s.holding.all({ queue, groups, now }) as { n: number }[]) : [];
      const rated = grouped && groupRateLimit ? (s.starts.all({ queue, groups }) as string[]) : [];
      for (let pos = 0; pos < chunk.length && budget > 0; pos++) {
        const g = chunk[pos]!;
        if (g.grp === '') {
          const rows = s.ungrouped.all({ queue, now, limit: budget, token, leaseUntil });
          out.push(...rows);
          budget -= rows.length;
          visits.push(['', null]);
          continue;
        }
        let room = budget;
        if (groupConcurrency !== undefined) room = Math.min(room, groupConcurrency - held[pos]!.n);
        let starts: number[] | undefined;
        if (groupRateLimit) {
          starts = JSON.parse(rated[pos]!) as number[];
          room = Math.min(room, startsLeft(starts, groupRateLimit, now));
        }
        const ids = room > 0 ? (due.get(pos) ?? []).slice(0, room) : [];
        picked.push(...ids);
        if (ids.length === 0) dry.push(g.grp);
        if (starts) starts = withStarts(starts, groupRateLimit!, now, ids.length);
        visits.push([g.grp, starts ? JSON.stringify(starts) : null]);
        named++;
        namedTaken += ids.length;
        budget -= ids.length;
      }
    }
    if (picked.length > 0) {
      out.push(...s.activate.all({ ids: JSON.stringify(picked), now, token, leaseUntil }));
    }
    // A visited group that took nothing and has no live task leaves the turns; the others go to the back.
    const idled =
      dry.length === 0
        ? new Set<string>()
        : new Set((s.idle.all({ queue, groups: JSON.stringify(dry) }) as { grp: string }[]).map((x) => x.grp));
    const served = idled.size === 0 ? visits : visits.filter(([g]) => !idled.has(g));
    if (served.length > 0) s.served.run({ queue, base, visits: JSON.stringify(served), rated: groupRateLimit ? 1 : 0 });
    if (limits.rateLimit) {
      s.saveLimits.run(queue, JSON.stringify(withStarts(queueStarts, limits.rateLimit, now, wanted - budget)));
    }
    // In no particular order: `claimedTasks` sorts the batch.
    return out;
  };
}

/** Each group's candidates (by position in its chunk), in the group's claim order: priority, then enqueue order. */
function candidatesByPos(rows: Candidate[]): Map<number, number[]> {
  rows.sort((a, b) => a.pos - b.pos || a.priority - b.priority || a.id - b.id);
  const by = new Map<number, number[]>();
  for (const row of rows) {
    let ids = by.get(row.pos);
    if (!ids) by.set(row.pos, (ids = []));
    ids.push(row.id);
  }
  return by;
}
