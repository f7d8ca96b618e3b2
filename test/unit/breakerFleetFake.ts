/**
 * A fleet-breaker store in memory for tests: the `FleetBreakers` capability
 * over one shared map, attached to a memory store per runtime, so several
 * runtimes in one process share a fleet breaker as processes sharing Postgres
 * would. `down = true` makes it unreachable (every call fails with
 * STORE_UNAVAILABLE, and watchers hear `null`).
 */
import { KeelError } from '../../src/core/errors.js';
import { memoryStore } from '../../src/index.js';
import { breakerNews, type FleetBreakerRow, type FleetBreakers, type Store } from '../../src/stores/store.js';

export class FakeFleet {
  readonly rows = new Map<string, FleetBreakerRow>();
  private watchers = new Set<(name: string | null | undefined) => void>();
  private isDown = false;
  writes = 0;

  get down(): boolean {
    return this.isDown;
  }

  set down(value: boolean) {
    if (value === this.isDown) return;
    this.isDown = value;
    for (const w of this.watchers) queueMicrotask(() => w(value ? null : undefined));
  }

  /** A memory store for one runtime, with this fleet's capability. */
  store(): Store & FleetBreakers {
    const fleet = this;
    const check = async () => {
      await Promise.resolve();
      if (fleet.isDown) throw new KeelError('STORE_UNAVAILABLE', 'fake fleet store is down');
    };
    const capability: FleetBreakers = {
      async updateBreaker(name, change) {
        await check();
        const before = fleet.rows.get(name);
        const after = change(before ? structuredClone(before) : undefined);
        if (after === undefined) return before;
        fleet.writes++;
        fleet.rows.set(name, structuredClone(after));
        if (breakerNews(before, after)) for (const w of fleet.watchers) queueMicrotask(() => w(name));
        return after;
      },
      async readBreaker(name) {
        await check();
        const row = fleet.rows.get(name);
        return row ? structuredClone(row) : undefined;
      },
      watchBreakers(onChange) {
        fleet.watchers.add(onChange);
        if (!fleet.isDown) queueMicrotask(() => onChange(undefined));
        return () => fleet.watchers.delete(onChange);
      },
    };
    return Object.assign(memoryStore(), capability);
  }
}
