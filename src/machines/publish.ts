import type { AnyActorRef, EventObject, MachineContext, ParameterizedObject } from 'xstate';
import { enqueueActions } from 'xstate';

type Resolver<TContext, TEvent, T> = T | ((args: { context: TContext; event: TEvent }) => T);
type Plain = string | number | boolean | null | undefined | readonly unknown[] | { [key: string]: unknown };

/**
 * An action that publishes on the runtime's bus (`systemId: 'bus'`) from inside
 * any machine: `entry: publish('order.placed', ({ context }) => context.order)`.
 * Outside a keel runtime (no bus in the system) it does nothing.
 */
export function publish<
  TContext extends MachineContext,
  TExpressionEvent extends EventObject,
  TParams extends ParameterizedObject['params'] | undefined,
  TEvent extends EventObject,
>(topic: Resolver<TContext, TExpressionEvent, string>, payload?: Resolver<TContext, TExpressionEvent, Plain>) {
  return enqueueActions<TContext, TExpressionEvent, TParams, TEvent, never, never, never, never, never>(
    ({ context, event, system, self, enqueue }) => {
      const bus = system.get('bus') as AnyActorRef | undefined;
      if (!bus) return;
      const args = { context, event };
      enqueue.sendTo(bus, {
        type: 'bus.publish',
        topic: typeof topic === 'function' ? topic(args) : topic,
        payload: typeof payload === 'function' ? (payload as (a: typeof args) => unknown)(args) : payload,
        source: self.id,
      });
    },
  );
}
