import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { HostGuard } from './hostGuard.js';

/** Why an action request was refused: the HTTP status and a message. */
export interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** The largest action body read (an action is a few ids and names). */
export const MAX_ACTION_BODY = 64 * 1024;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Decides whether an operator action may run. Actions change production state,
 * so every one needs, beyond the viewer's `Host` check (no DNS rebinding):
 *
 * - an admin token configured (`viewer: { adminToken }`); without one the viewer is read-only;
 * - `Origin` present and naming this very server (the `Host` the request came to): a page on another
 *   origin cannot post here from a user's browser (no CSRF), and `Host` itself passed the Host check;
 * - `Authorization: Bearer <token>`, compared in constant time (both sides hashed, so the length leaks nothing);
 * - a JSON body (`content-type: application/json`), which an HTML form cannot send.
 *
 * The method (POST only) is checked by the route. Returns undefined when the request may run.
 */
export function refuseAction(req: IncomingMessage, token: string | undefined, guard: HostGuard): Refusal | undefined {
  if (token === undefined) {
    return { status: 403, message: 'actions are off: this console is read-only (start it with an admin token)' };
  }
  const origin = req.headers.origin;
  if (!sameOrigin(origin, req.headers.host, guard)) {
    return {
      status: 403,
      message: `forbidden origin ${JSON.stringify(origin ?? null)}: actions are taken only from this console's own page`,
    };
  }
  const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
  if (!timingSafeEqual(digest(auth), digest(token)) || auth === '') {
    return {
      status: 401,
      message: 'missing or wrong admin token (Authorization: Bearer <token>)',
      headers: { 'www-authenticate': 'Bearer realm="keel console"' },
    };
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json')
    return { status: 415, message: 'the body must be JSON (content-type: application/json)' };
  return undefined;
}

/** True when `origin` is `http://<host>` for the request's own `Host`, and that host passes the guard. */
function sameOrigin(origin: string | undefined, host: string | undefined, guard: HostGuard): boolean {
  if (origin === undefined || host === undefined || !guard.allows(host)) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return url.protocol === 'http:' && url.host.toLowerCase() === new URL(`http://${host}`).host.toLowerCase();
}

/** Reads a JSON body of at most `MAX_ACTION_BODY` bytes; rejects with a `Refusal`. */
export function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ACTION_BODY) {
        reject({ status: 413, message: `the body is larger than ${MAX_ACTION_BODY} bytes` } satisfies Refusal);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject({ status: 400, message: 'the body is not valid JSON' } satisfies Refusal);
      }
    });
    req.on('error', reject);
  });
}
