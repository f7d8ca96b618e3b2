import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeelError } from '../core/errors.js';
import { type Refusal, readJson, refuseAction } from './actionGuard.js';
import type { HostGuard } from './hostGuard.js';
import { ActionError, type OpsSnapshot, type OpsSource, parseAction } from './ops.js';

/** What the page receives about operations: the source's snapshot and whether actions are on. */
export interface OpsMessage {
  kind: 'ops';
  ops: OpsSnapshot & { actions: boolean };
}

/** How often the operations are read while a page is connected. */
export const OPS_POLL_MS = 1000;

/**
 * The operations panel's feed: reads the source every `pollMs` while a page
 * listens (nobody watching costs no queries) and tells listeners when the
 * picture changed; `refresh` reads at once (after an action).
 */
export class OpsChannel {
  private readonly listeners = new Set<(m: OpsMessage) => void>();
  private latest: OpsMessage | undefined;
  private latestJson = '';
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<OpsMessage> | undefined;

  constructor(
    readonly source: OpsSource,
    private readonly actions: boolean,
    private readonly pollMs: number,
    private readonly report: (error: unknown) => void,
  ) {}

  /** Calls `fn` with the latest picture (when known) and every change; polling runs while anyone listens. */
  listen(fn: (m: OpsMessage) => void): () => void {
    this.listeners.add(fn);
    if (this.latest) fn(this.latest);
    if (this.listeners.size === 1) this.tick();
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** Reads the source now; resolves with the picture (sent to listeners when it changed). */
  refresh(): Promise<OpsMessage> {
    this.reading ??= (async () => {
      const ops = await this.source.snapshot();
      const message: OpsMessage = { kind: 'ops', ops: { ...ops, actions: this.actions } };
      const json = JSON.stringify(message);
      if (json !== this.latestJson) {
        this.latestJson = json;
        this.latest = message;
        for (const fn of this.listeners) fn(message);
      }
      return message;
    })().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private tick(): void {
    this.refresh()
      .catch((error: unknown) => this.report(error))
      .finally(() => {
        // unref: a console nobody stops must not hold the process by its poll alone.
        if (this.listeners.size > 0) this.timer = setTimeout(() => this.tick(), this.pollMs).unref();
      });
  }
}

/** Answers `GET /ops`: the operations now, as JSON. */
export function serveOps(channel: OpsChannel, res: ServerResponse): void {
  channel.refresh().then(
    (m) => json(res, 200, m.ops),
    (error: unknown) => json(res, 500, { ok: false, error: describe(error) }),
  );
}

/** Answers `POST /actions` (see `refuseAction` for what it takes), then refreshes the picture. */
export async function serveAction(
  channel: OpsChannel,
  token: string | undefined,
  guard: HostGuard,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain; charset=utf-8' });
    return void res.end('actions are POST only\n');
  }
  const refused = refuseAction(req, token, guard);
  if (refused) return refuse(res, refused);
  let body: unknown;
  try {
    body = await readJson(req);
  } catch (error) {
    return refuse(res, error as Refusal);
  }
  try {
    const request = parseAction(body);
    const result = await channel.source.act(request);
    json(res, 200, { ok: true, result: result ?? null });
  } catch (error) {
    json(res, statusOf(error), { ok: false, error: describe(error) });
  } finally {
    void channel.refresh().catch(() => {});
  }
}

function refuse(res: ServerResponse, r: Refusal): void {
  json(res, r.status, { ok: false, error: { message: r.message } }, r.headers);
}

/** Answers with a JSON body (not cached: the console's data changes). */
export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** Answers a failed request: the status the error says (400 for `INVALID_OPTIONS`, 404 for not found) and its message. */
export function answerError(res: ServerResponse, error: unknown): void {
  json(res, statusOf(error), { ok: false, error: describe(error) });
}

/** The HTTP status of a failed action: what the error says about the request. */
function statusOf(error: unknown): number {
  if (error instanceof ActionError) return error.status;
  if (!(error instanceof KeelError)) return 500;
  const byCode: Record<string, number> = {
    NOT_FOUND: 404,
    INVALID_OPTIONS: 400,
    SAGA_FINISHED: 409,
    NOT_STARTED: 409,
    RUNTIME_STOPPED: 409,
    STORE_UNAVAILABLE: 503,
  };
  return byCode[error.code] ?? 500;
}

function describe(error: unknown): { code?: string; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  return error instanceof KeelError ? { code: error.code, message } : { message };
}
