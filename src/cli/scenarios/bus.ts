import { setup } from 'xstate';
import { createRuntime, publish } from '../../index.js';
import type { DemoLog } from '../demoLog.js';

interface ShopEvents {
  'user.updated': { userId: string; email: string };
  'order.placed': { orderId: string; total: number };
  'order.shipped': { orderId: string };
  [topic: string]: unknown;
}

/**
 * Services that react to each other's events without knowing each other: a
 * mailer (a function), an analytics service (wildcard), a loyalty machine (an
 * actor in the system that publishes back through the bus), and a handler that
 * crashes without hurting anyone else.
 */
export async function demo(log: DemoLog): Promise<void> {
  const rt = createRuntime<ShopEvents>();
  rt.bus.subscribe('user.updated', (p) => log.line('mailer', `confirm new address ${p.email} for ${p.userId}`));
  rt.bus.subscribe('order.>', (_p, e) => log.line('analytics', `counted ${e.type}`));
  rt.bus.subscribe('order.placed', () => {
    throw new Error('the flaky report service crashed');
  });
  rt.bus.subscribe('bus.handler.failed', (f) =>
    log.line('bus', `isolated a failing handler on '${(f as { type: string }).type}'`),
  );

  const loyalty = setup({
    types: { events: {} as { type: 'order.placed'; payload: ShopEvents['order.placed'] } },
  }).createMachine({
    id: 'loyalty',
    initial: 'listening',
    states: {
      listening: {
        on: {
          'order.placed': { actions: publish('loyalty.pointsAwarded', ({ event }) => ({ order: event.payload })) },
        },
      },
    },
  });
  const ref = rt.spawn(loyalty, { id: 'loyalty' });
  rt.bus.subscribe('order.placed', ref);
  rt.bus.subscribe('loyalty.pointsAwarded', (p) => log.line('loyalty', `points awarded for ${JSON.stringify(p)}`));

  await rt.start();
  const reached = [
    rt.bus.publish('user.updated', { userId: 'u1', email: 'ada@example.com' }),
    rt.bus.publish('order.placed', { orderId: 'o1', total: 42 }),
    rt.bus.publish('order.shipped', { orderId: 'o1' }),
  ];
  await new Promise((r) => setImmediate(r));
  await rt.stop();
  log.summary(`bus: 3 events reached ${reached.join(' + ')} subscribers; a crashing handler was isolated`);
}
