import type { ServerResponse } from 'node:http';
import { ActionError, type OpsBrowse } from './ops.js';
import { answerError, json } from './opsChannel.js';

/** The read-only list and detail paths, with the query parameters each takes. */
const ROUTES = {
  '/ops/tasks': ['runtime', 'queue', 'state', 'key', 'group', 'order', 'limit', 'after'],
  '/ops/task': ['runtime', 'queue', 'id'],
  '/ops/sagas': ['runtime', 'saga', 'status', 'order', 'limit', 'after'],
  '/ops/saga': ['runtime', 'saga', 'id'],
} as const;

/** True for a path `serveBrowse` answers. */
export function isBrowsePath(path: string): path is keyof typeof ROUTES {
  return Object.hasOwn(ROUTES, path);
}

/**
 * Answers `GET /ops/tasks|task|sagas|saga?...` from `browse`: a page of
 * `{ items, next? }` or one detail; 400 naming a bad or unknown parameter,
 * 404 for an unknown runtime, queue, saga or id. Reading needs no admin token.
 */
export async function serveBrowse(
  browse: OpsBrowse,
  path: keyof typeof ROUTES,
  search: URLSearchParams,
  res: ServerResponse,
): Promise<void> {
  try {
    const p = params(path, search);
    const runtime = p.runtime;
    if (path === '/ops/tasks' || path === '/ops/task') {
      const queue = required(p, 'queue');
      if (path === '/ops/task') return found(res, await browse.task(runtime, queue, required(p, 'id')), 'task');
      const { runtime: _r, queue: _q, ...query } = p;
      return json(
        res,
        200,
        await browse.tasks({ ...(runtime !== undefined && { runtime }), queue, query: typed(query) }),
      );
    }
    const saga = required(p, 'saga');
    if (path === '/ops/saga') return found(res, await browse.saga(runtime, saga, required(p, 'id')), 'saga run');
    const { runtime: _r, saga: _s, ...query } = p;
    json(res, 200, await browse.sagas({ ...(runtime !== undefined && { runtime }), saga, query: typed(query) }));
  } catch (error) {
    answerError(res, error);
  }
}

function found(res: ServerResponse, detail: unknown, what: string): void {
  if (detail === undefined) throw new ActionError(404, `no such ${what} (unknown, or pruned by its retention)`);
  json(res, 200, detail);
}

/** The parameters of `path`, each at most once; an unknown one is refused by name. */
function params(path: keyof typeof ROUTES, search: URLSearchParams): Record<string, string> {
  const allowed: readonly string[] = ROUTES[path];
  const out: Record<string, string> = {};
  for (const [name, value] of search) {
    if (!allowed.includes(name)) {
      throw new ActionError(400, `${path}: unknown parameter '${name}' (parameters: ${allowed.join(', ')})`);
    }
    if (name in out) throw new ActionError(400, `${path}: parameter '${name}' is given twice`);
    out[name] = value;
  }
  return out;
}

function required(p: Record<string, string>, name: string): string {
  const v = p[name];
  if (v === undefined || v === '') throw new ActionError(400, `parameter '${name}' is required`);
  return v;
}

/** A page size arrives as text: a number when it reads as one, else as given, for the option check to name. */
function typed(query: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...query };
  if (query.limit !== undefined && /^[0-9]{1,7}$/.test(query.limit)) out.limit = Number(query.limit);
  return out;
}
