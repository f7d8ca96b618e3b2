/**
 * The Postgres store's LISTEN connection, over a fake `pg` client: channels
 * added while it is connected are listened to one query at a time (`pg`
 * deprecates a query sent while another runs, and pg@9 drops it).
 */
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Listener } from '../../src/stores/postgres/listen.js';
import { until } from '../fixtures/wait.js';

/** A client that answers each query a few turns later and counts how many ran at once. */
class SlowClient extends EventEmitter {
  running = 0;
  mostAtOnce = 0;
  readonly sent: string[] = [];
  async connect(): Promise<void> {}
  async query(sql: string): Promise<void> {
    this.sent.push(sql);
    this.running++;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    await new Promise((r) => setTimeout(r, 5));
    this.running--;
  }
  async end(): Promise<void> {}
}

describe('Postgres Listener', () => {
  it('sends the LISTEN of channels added while connected one after another, and each handler hears it listens', async () => {
    const client = new SlowClient();
    const listener = new Listener(
      () => client as unknown as pg.Client,
      (e) => {
        throw e;
      },
    );
    const first: unknown[] = [];
    listener.listen('a', (p) => first.push(p));
    await listener.ready();
    expect(first).toEqual([undefined]);
    const heard: string[] = [];
    for (const channel of ['b', 'c', 'd']) listener.listen(channel, (p) => p === undefined && heard.push(channel));
    await until(() => heard.length === 3, 5_000, 'three channels listening');
    expect(client.sent).toEqual(['LISTEN "a"', 'LISTEN "b"', 'LISTEN "c"', 'LISTEN "d"']);
    expect(heard).toEqual(['b', 'c', 'd']);
    expect(client.mostAtOnce).toBe(1);
    await listener.close();
  });
});
