import { beforeEach, describe, expect, it } from 'vitest';
import { isSchedules, type NewTask, type Schedules, type Store } from '../../src/stores/store.js';
import { openedStore, type StoreFactory } from './contract.js';

const task = (key: string) => ({ payload: JSON.stringify(key), runAt: 0, key });

/**
 * The `Schedules` capability (issue #15), as every store implements it: the
 * definition kept or replaced, and the slot moved by compare-and-set together
 * with its tasks. Run from `test/stores/<store>.test.ts`.
 */
export function scheduleStoreContract(name: string, factory: StoreFactory): void {
  describe(`schedule store contract: ${name}`, () => {
    const opened = openedStore(factory);
    let store: Store & Schedules;
    beforeEach(() => {
      const s = opened();
      if (!isSchedules(s)) throw new Error(`${name} does not implement Schedules`);
      store = s;
    });

    it('saves a schedule once: the same definition again keeps its last slot', async () => {
      expect(await store.saveSchedule('s', '{"a":1}', 100)).toEqual({
        name: 's',
        definition: '{"a":1}',
        lastSlot: 100,
      });
      expect(await store.saveSchedule('s', '{"a":1}', 900)).toEqual({
        name: 's',
        definition: '{"a":1}',
        lastSlot: 100,
      });
      expect(await store.readSchedule('s')).toEqual({ name: 's', definition: '{"a":1}', lastSlot: 100 });
      expect(await store.readSchedule('other')).toBeUndefined();
    });

    it('another definition replaces it and starts no earlier than its registration', async () => {
      await store.saveSchedule('s', '{"a":1}', 100);
      expect(await store.saveSchedule('s', '{"a":2}', 900)).toEqual({
        name: 's',
        definition: '{"a":2}',
        lastSlot: 900,
      });
      // A later slot already handled is kept.
      await store.fireSchedule('s', { from: 900, to: 5000, queue: 'q', tasks: [] }, 5000);
      expect((await store.saveSchedule('s', '{"a":3}', 1000)).lastSlot).toBe(5000);
    });

    it('lists by name and removes', async () => {
      await store.saveSchedule('b', 'B', 1);
      await store.saveSchedule('a', 'A', 2);
      expect((await store.listSchedules()).map((r) => [r.name, r.definition, r.lastSlot])).toEqual([
        ['a', 'A', 2],
        ['b', 'B', 1],
      ]);
      expect(await store.removeSchedule('a')).toBe(true);
      expect(await store.removeSchedule('a')).toBe(false);
      expect((await store.listSchedules()).map((r) => r.name)).toEqual(['b']);
    });

    it('fires with compare-and-set: the slot moves and the tasks are stored together, once', async () => {
      await store.saveSchedule('s', 'D', 0);
      const fired = await store.fireSchedule('s', { from: 0, to: 1000, queue: 'q', tasks: [task('k1')] }, 1000);
      expect(fired.status).toBe('fired');
      const [result] = (fired as { results: { id: string; deduplicated: boolean }[] }).results;
      expect(result!.deduplicated).toBe(false);
      expect((await store.get('q', result!.id, 1000))?.key).toBe('k1');
      expect((await store.readSchedule('s'))?.lastSlot).toBe(1000);
      // A second process that read the old slot loses, and writes nothing.
      expect(await store.fireSchedule('s', { from: 0, to: 1000, queue: 'q', tasks: [task('k1b')] }, 1000)).toEqual({
        status: 'moved',
      });
      expect((await store.stats('q', 1000)).pending).toBe(1);
      expect(await store.fireSchedule('nope', { from: 0, to: 1000, queue: 'q', tasks: [task('x')] }, 1000)).toEqual({
        status: 'gone',
      });
      expect((await store.stats('q', 1000)).pending).toBe(1);
    });

    it('fires racing callers: exactly one wins', async () => {
      await store.saveSchedule('race', 'D', 0);
      const results = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          store.fireSchedule('race', { from: 0, to: 60, queue: 'r', tasks: [task(`r${i}`)] }, 60),
        ),
      );
      expect(results.filter((r) => r.status === 'fired')).toHaveLength(1);
      expect((await store.stats('r', 60)).pending).toBe(1);
    });

    it('a failing enqueue leaves the slot where it was', async () => {
      await store.saveSchedule('s', 'D', 0);
      // No task at all: the queue never writes this; here it makes the enqueue throw inside the transaction.
      const bad = null as unknown as NewTask;
      await expect(store.fireSchedule('s', { from: 0, to: 10, queue: 'q', tasks: [bad] }, 10)).rejects.toThrow();
      expect((await store.readSchedule('s'))?.lastSlot).toBe(0);
    });
  });
}
