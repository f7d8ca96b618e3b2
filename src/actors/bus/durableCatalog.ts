import { type DurableBus, isWatchedDurableBus, type Store, topicMatches } from '../../stores/store.js';
import type { DurableHost } from './durableTypes.js';

/** A subscription this process holds: known even before (or if never) its save reached the store. */
export interface HeldPattern {
  readonly name: string;
  readonly pattern: string;
  readonly active: boolean;
}

/**
 * Every durable subscription this runtime knows of (name → pattern): its own
 * and those other processes saved, re-read from the store every `refreshMs`,
 * or on every change for a store that tells of them. A publish is recorded
 * only when some known pattern matches it.
 */
export class DurableCatalog {
  private known = new Map<string, string>();
  private timer: unknown;
  /** The refresh under way: the stop waits for it, so it never reads a closed store. */
  private refreshing: Promise<void> | undefined;
  private unwatch: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly host: DurableHost,
    private readonly refreshMs: number,
    /** This process's own subscriptions, for those the store does not hold yet. */
    private readonly held: () => Iterable<HeldPattern>,
    /** Called after every change with whether any subscription is known. */
    private readonly changed: (any: boolean) => void,
  ) {}

  /** True when some known subscription's pattern matches `topic`. */
  matches(topic: string): boolean {
    for (const pattern of this.known.values()) if (topicMatches(pattern, topic)) return true;
    return false;
  }

  know(name: string, pattern: string): void {
    this.known.set(name, pattern);
    this.changed(true);
  }

  forget(name: string): void {
    this.known.delete(name);
    this.changed(this.known.size > 0);
  }

  /** Reads the store, then keeps up with it: told of changes, or polling. */
  async start(store: Store & DurableBus): Promise<void> {
    await this.refresh(store);
    if (isWatchedDurableBus(store)) {
      // The store tells of every change (in-process, or NOTIFY on Postgres, which polls every refreshMs
      // only while its LISTEN connection is down): no timer on the runtime clock.
      this.unwatch = store.watchDurables(() => {
        if (this.closed) return;
        this.refreshing = this.refresh(store)
          .catch((error: unknown) => this.host.report(error, 'reading durable subscriptions failed'))
          .finally(() => {
            this.refreshing = undefined;
          });
      }, this.refreshMs);
    } else this.arm(store);
  }

  /** Stops following the store; resolves once a refresh under way is over. */
  async stop(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    this.host.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.refreshing?.catch(() => {});
  }

  private async refresh(store: DurableBus): Promise<void> {
    const rows = await store.listDurables();
    const known = new Map(rows.map((r) => [r.name, r.pattern]));
    // Subscribed here and not saved yet (a failed save): still recorded for, the store decides.
    for (const sub of this.held()) if (sub.active && !known.has(sub.name)) known.set(sub.name, sub.pattern);
    this.known = known;
    this.changed(known.size > 0);
  }

  private arm(store: DurableBus): void {
    if (this.closed) return;
    this.timer = this.host.clock.setTimeout(() => {
      this.refreshing = this.refresh(store)
        .catch((error: unknown) => {
          if (!this.closed) this.host.report(error, 'reading durable subscriptions failed');
        })
        .finally(() => {
          this.refreshing = undefined;
          this.arm(store);
        });
    }, this.refreshMs);
  }
}
