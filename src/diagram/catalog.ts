import type { AnyStateMachine } from 'xstate';
import { breakerMachine } from '../machines/breaker.js';
import { busMachine } from '../machines/bus.js';
import { queueMachine } from '../machines/queue.js';
import { runtimeMachine } from '../machines/runtime.js';
import { createSagaMachine, type SagaStepShape } from '../machines/saga.js';
import { scheduleMachine } from '../machines/schedule.js';
import { taskMachine } from '../machines/task.js';
import { machineGraph } from './graph.js';
import { layoutGraph } from './layout.js';

/** A machine the docs and `keel diagram` know by name. */
export interface CatalogEntry {
  name: string;
  title: string;
  /** One sentence under the diagram in the README. */
  caption: string;
  machine: AnyStateMachine;
}

/**
 * Saga machines are generated per saga; the diagram shows the webhook checkout
 * of `examples/checkout.ts` (`checkoutWithWebhookSteps`): createOrder, then
 * deductInventory and processPayment side by side (the parallel step
 * reserveAndAuthorise), then the wait for the payment webhook, which can time
 * out. The shape is what `rt.saga` derives from those steps (a test checks
 * that the two machines match); it is written out here so the diagram layer
 * does not import the CLI's scenarios.
 */
const checkoutShape: SagaStepShape[] = [
  { name: 'createOrder', kind: 'run', canFail: true, compensable: true, undoOnFailure: false },
  {
    name: 'reserveAndAuthorise',
    kind: 'run',
    canFail: true,
    compensable: false,
    undoOnFailure: false,
    parallel: [
      { name: 'deductInventory', kind: 'run', canFail: true, compensable: true, undoOnFailure: false },
      { name: 'processPayment', kind: 'run', canFail: true, compensable: true, undoOnFailure: false },
    ],
  },
  { name: 'paymentConfirmed', kind: 'signal', canFail: true, compensable: false, undoOnFailure: false },
];

/** Every machine with a diagram, in the order the README shows them. */
export const catalog: readonly CatalogEntry[] = [
  {
    name: 'breaker',
    title: 'Circuit breaker',
    caption: '`rt.breaker(name)`: one actor per breaker (system id `breaker.<name>`).',
    machine: breakerMachine,
  },
  {
    name: 'saga',
    title: 'Saga (the checkout example: parallel reserve-and-authorise, payment webhook with a timeout)',
    caption: '`rt.saga(name, { steps })` generates this machine from its steps (system id `saga.<name>.<id>` per run).',
    machine: createSagaMachine('checkout', checkoutShape),
  },
  {
    name: 'task',
    title: 'Task',
    caption: 'The lifecycle every task of a queue follows; the queue and its stores apply it (no actor per task).',
    machine: taskMachine,
  },
  {
    name: 'queue',
    title: 'Task queue',
    caption:
      '`rt.queue(name)`: one actor per queue (system id `queue.<name>`), with one worker actor per unit of concurrency.',
    machine: queueMachine,
  },
  {
    name: 'schedule',
    title: 'Schedule',
    caption:
      '`rt.schedule(name, { cron | everyMs, queue })`: one actor per schedule (system id `schedule.<name>`); each wake-up moves the stored slot and enqueues its task in one transaction.',
    machine: scheduleMachine,
  },
  {
    name: 'bus',
    title: 'Event bus',
    caption: '`rt.bus`: the actor with system id `bus`.',
    machine: busMachine,
  },
  {
    name: 'runtime',
    title: 'Runtime',
    caption: '`createRuntime()`: the root actor of the system; every pattern actor lives below it.',
    machine: runtimeMachine,
  },
];

/** The catalog entry called `name`, or undefined. */
export function catalogEntry(name: string): CatalogEntry | undefined {
  return catalog.find((e) => e.name === name);
}

/**
 * Lays out every catalog machine now (layouts are cached per definition), so
 * a viewer that starts showing them gets each drawing at once instead of
 * after elkjs's first, slower run.
 */
export async function layoutCatalog(): Promise<void> {
  await Promise.all(catalog.map((e) => layoutGraph(machineGraph(e.machine))));
}
