import type pg from 'pg';

/**
 * Called with each notification's payload; `null` when the connection is
 * lost (from then on notifications are missed), `undefined` once it listens
 * again (the first connect included): what was sent meanwhile is unknown.
 */
export type NotifyHandler = (payload: string | null | undefined) => void;

/**
 * One connection that LISTENs on a few channels for the whole store. It
 * connects on first use and reconnects with backoff when the connection
 * drops; handlers hear `null` when it drops and `undefined` once it listens
 * again, because what was sent meanwhile is gone. Notifications only speed things up: the
 * queue still polls, so nothing depends on one arriving.
 */
export class Listener {
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private readonly handlers = new Map<string, Set<NotifyHandler>>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = 100;
  private closed = false;
  private firstAttempt: Promise<void> | undefined;
  /** The last LISTEN sent on the connected client. */
  private turns: Promise<unknown> = Promise.resolve();

  constructor(
    /** A new, unconnected client; the store passes it because `pg` is loaded only once the store opens. */
    private readonly newClient: () => pg.Client,
    private readonly report: (error: unknown) => void,
  ) {}

  /** Calls `handler` for every notification on `channel` until the returned function is called. */
  listen(channel: string, handler: NotifyHandler): () => void {
    let set = this.handlers.get(channel);
    const fresh = !set;
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    if (this.closed) return () => {};
    const client = this.client;
    if (!client && !this.connecting) this.connect();
    else if (client) {
      // Already connected: this handler did not see the connect, so it hears `undefined` once it listens.
      (fresh ? this.inTurn(client, `LISTEN "${channel}"`) : Promise.resolve()).then(
        () => handler(undefined),
        (e) => this.report(e),
      );
    }
    return () => {
      set.delete(handler);
    };
  }

  /** Resolves once the first connection attempt ended (listening, or failed and retrying). */
  ready(): Promise<void> {
    return this.firstAttempt ?? Promise.resolve();
  }

  /** Drops the connection and every handler; later `listen` calls do nothing. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.handlers.clear();
    await this.connecting?.catch(() => {});
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  /** Runs `sql` after the queries already sent on `client`: `pg` deprecates a query sent while another runs. */
  private inTurn(client: pg.Client, sql: string): Promise<unknown> {
    const next = this.turns.then(() => client.query(sql));
    this.turns = next.catch(() => {});
    return next;
  }

  private connect(): void {
    const client = this.newClient();
    const attempt = (async () => {
      // An error event without a listener would crash the process; a lost connection is retried instead.
      client.on('error', () => this.lost(client));
      client.on('end', () => this.lost(client));
      client.on('notification', (msg) => {
        for (const h of this.handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
      });
      await client.connect();
      for (const channel of this.handlers.keys()) await client.query(`LISTEN "${channel}"`);
      if (this.closed) {
        this.connecting = undefined;
        await client.end().catch(() => {});
        return;
      }
      this.client = client;
      this.turns = Promise.resolve();
      this.retryMs = 100;
      // Whatever was notified while no connection listened is unknown: wake everyone once.
      for (const set of this.handlers.values()) for (const h of set) h(undefined);
      this.connecting = undefined;
    })().catch((error) => {
      this.connecting = undefined;
      if (!this.closed) this.report(error);
      this.lost(client);
    });
    this.connecting = attempt;
    this.firstAttempt ??= attempt;
  }

  private lost(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      for (const set of this.handlers.values()) for (const h of set) h(null);
    }
    client.removeAllListeners('end');
    client.end().catch(() => {});
    if (this.closed || this.retryTimer || this.connecting) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed && !this.client) this.connect();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, 5000);
  }
}
