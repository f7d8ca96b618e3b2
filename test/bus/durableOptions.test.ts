/** Bad input to durable subscriptions and the runtime's bus options: `INVALID_OPTIONS` naming the option and value. */
import { describe, expect, it } from 'vitest';
import { createRuntime, type KeelError, memoryStore, type Store } from '../../src/index.js';
import { refusal as thrown } from '../fixtures/refusal.js';

describe('durable subscribe options', () => {
  const rt = createRuntime();
  const sub = (options: unknown, topic = 'user.updated') =>
    thrown(() => rt.bus.subscribe(topic, () => {}, options as { durable: string }));

  it.each([
    ['crm sync', "'crm sync'"],
    ['', "''"],
    [42, '42'],
    ['x'.repeat(101), 'x'.repeat(101)],
    ['a.b', "'a.b'"],
  ])('refuses the durable name %j', (durable, shown) => {
    const e = sub({ durable });
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain("option 'durable'");
    expect(e.message).toContain(shown);
  });

  it('refuses a missing durable name', () => {
    expect(sub({ retry: { maxAttempts: 2 } }).message).toContain("option 'durable'");
  });

  it('refuses a from other than now or earliest', () => {
    const e = sub({ durable: 'x', from: 'latest' });
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain("option 'from'");
    expect(e.message).toContain("'latest'");
  });

  it('refuses unknown keys, naming them', () => {
    const e = sub({ durable: 'x', replay: true });
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain("option 'replay'");
  });

  it.each([
    [{ concurrency: 0 }, 'concurrency', '0'],
    [{ leaseMs: -1 }, 'leaseMs', '-1'],
    [{ breaker: '' }, 'breaker', "''"],
    [{ retry: { maxAttempts: 0 } }, 'retry', '0'],
  ])('refuses %j', (extra, option, shown) => {
    const e = sub({ durable: 'x', ...extra });
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain(option);
    expect(e.message).toContain(shown);
  });

  it('refuses a bad pattern with INVALID_TOPIC', () => {
    expect(sub({ durable: 'x' }, 'order.>.x').code).toBe('INVALID_TOPIC');
  });

  it('refuses a handler that is not a function', () => {
    const e = thrown(() => rt.bus.subscribe('a', 42 as never, { durable: 'x' }));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain("option 'handler'");
  });

  it('refuses a second active subscribe under one name in one runtime', () => {
    const local = createRuntime();
    local.bus.subscribe('a', () => {}, { durable: 'twice' });
    expect(thrown(() => local.bus.subscribe('a', () => {}, { durable: 'twice' })).code).toBe('DUPLICATE_NAME');
  });

  it('refuses a store that keeps no durable subscriptions', () => {
    const { recordEvents: _drop, ...plain } = memoryStore() as Store & { recordEvents: unknown };
    const local = createRuntime({ store: plain as Store });
    const e = thrown(() => local.bus.subscribe('a', () => {}, { durable: 'x' }));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain("option 'durable'");
    expect(e.message).toContain('memory');
  });

  it("refuses publish { tx } on a store that cannot record in the caller's transaction", async () => {
    const local = createRuntime();
    await local.start();
    try {
      const e = await local.bus.publish('a', 1, { tx: {} }).catch((error: unknown) => error as KeelError);
      expect((e as KeelError).code).toBe('INVALID_OPTIONS');
      expect((e as KeelError).message).toContain("option 'tx'");
    } finally {
      await local.stop();
    }
  });
});

describe('createRuntime({ bus })', () => {
  it.each([
    [{ retentionMs: -1 }, 'retentionMs', '-1'],
    [{ retentionMs: 1.5 }, 'retentionMs', '1.5'],
    [{ refreshMs: 0 }, 'refreshMs', '0'],
    [{ refresh: 10 }, 'refresh', 'not a bus option'],
  ])('refuses %j', (bus, option, shown) => {
    const e = thrown(() => createRuntime({ bus: bus as never }));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain(`option '${option}'`);
    expect(e.message).toContain(shown);
  });

  it('refuses a bus option that is not an object', () => {
    expect(thrown(() => createRuntime({ bus: 5 as never })).message).toContain("option 'bus'");
  });
});
