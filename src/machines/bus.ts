import type { AnyActorRef } from 'xstate';
import { setup } from 'xstate';

/** Events the bus actor takes from other actors in the system. */
export type BusMachineEvent =
  | { type: 'bus.publish'; topic: string; payload?: unknown; source?: string }
  | { type: 'bus.subscribe'; topic: string; ref: AnyActorRef }
  | { type: 'bus.unsubscribe'; topic: string; ref: AnyActorRef }
  | { type: 'bus.close' };

/**
 * The event bus as the actor system sees it. Delivery itself is an action the
 * bus actor provides (`src/actors/bus/bus.ts`); direct `rt.bus.publish` calls skip
 * the actor's mailbox for speed but honour the state this machine is in.
 */
export const busMachine = setup({
  types: { events: {} as BusMachineEvent },
  actions: {
    deliver: () => {},
    register: () => {},
    unregister: () => {},
    seal: () => {},
  },
}).createMachine({
  id: 'bus',
  initial: 'open',
  states: {
    open: {
      on: {
        'bus.publish': { actions: 'deliver' },
        'bus.subscribe': { actions: 'register' },
        'bus.unsubscribe': { actions: 'unregister' },
        'bus.close': { target: 'closed' },
      },
    },
    closed: { type: 'final', entry: 'seal' },
  },
});
