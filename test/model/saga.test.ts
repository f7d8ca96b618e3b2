import { afterAll, describe, expect, it } from 'vitest';
import {
  type AnyActorRef,
  type AnyEventObject,
  type AnyMachineSnapshot,
  initialTransition,
  type StateValue,
  transition,
} from 'xstate';
import type { SagaRunStep, SagaStep } from '../../src/actors/saga/definition.js';
import { SagaEngine } from '../../src/actors/saga/engine.js';
import { KeelError } from '../../src/core/errors.js';
import { createRuntime, memoryStore } from '../../src/index.js';
import {
  CANCEL,
  createSagaMachine,
  RESULT_REFUSED,
  type SagaContext,
  type SagaStepEvent,
  type SagaStepShape,
  SKIP,
} from '../../src/machines/saga.js';
import type { SagaRecord } from '../../src/stores/sagaStore.js';
import { type Driver, eventKind, planPaths, replayPath, settle, TestClock } from '../../src/testing/index.js';
import { type Deferred, deferred } from '../fixtures/deferred.js';

/**
 * A step of a model shape: a call (undoable or not), a sleep (fixed, or
 * `until` that may throw), a signal wait, or a parallel group of calls.
 */
interface ModelStepSpec {
  name: string;
  kind: 'run' | 'sleep' | 'until' | 'signal' | 'signalForever' | 'parallel' | 'child';
  compensable?: boolean;
  undoOnFailure?: boolean;
  branches?: ModelStepSpec[];
}

const group = (name: string, branches: ModelStepSpec[]): ModelStepSpec => ({ name, kind: 'parallel', branches });

const SLEEP_MS = 1_000;
const SIGNAL_TIMEOUT_MS = 5_000;
const SIGNAL = 'payment.confirmed';
const REASON = 'the customer changed their mind';

const run = (name: string, compensable = true, undoOnFailure = false): ModelStepSpec => ({
  name,
  kind: 'run',
  compensable,
  undoOnFailure,
});

// One shape per construct, and one combining them; each is a machine the model covers completely.
const shapes: { label: string; steps: ModelStepSpec[]; states: number }[] = [
  {
    label: 'a generated 3-step saga',
    steps: [run('createOrder'), run('deductInventory'), run('processPayment', false)],
    states: 14,
  },
  {
    label: 'a 3-step saga whose deductInventory is undone on failure',
    steps: [run('createOrder'), run('deductInventory', true, true), run('processPayment', false)],
    states: 14,
  },
  {
    label: 'a saga with a durable sleep',
    steps: [run('createOrder'), { name: 'coolDown', kind: 'sleep' }, run('processPayment', false)],
    states: 12,
  },
  {
    label: 'a saga with a sleep until a computed time',
    steps: [run('createOrder'), { name: 'coolDown', kind: 'until' }, run('processPayment', false)],
    states: 12,
  },
  {
    label: 'a saga waiting for a signal with a timeout',
    steps: [run('createOrder'), { name: 'awaitPayment', kind: 'signal' }, run('ship', false)],
    states: 12,
  },
  {
    label: 'a saga combining a sleep, a signal wait with no timeout, and undo on failure',
    steps: [
      run('createOrder'),
      { name: 'coolDown', kind: 'until' },
      run('reserve', true, true),
      { name: 'awaitPayment', kind: 'signalForever' },
      { name: 'awaitReview', kind: 'signal' },
      run('charge', false),
    ],
    states: 17,
  },
  {
    label: 'a saga with a child saga',
    steps: [run('createOrder'), { name: 'shipping', kind: 'child' }, run('charge', false)],
    states: 14,
  },
  {
    label: 'a saga with a parallel group',
    steps: [
      run('createOrder'),
      group('reserveAndAuthorise', [run('reserve'), run('authorise', true, true), run('notify', false)]),
      run('charge', false),
    ],
    states: 25,
  },
  {
    label: 'a saga combining a parallel group, a sleep and a signal wait',
    steps: [
      run('createOrder'),
      group('both', [run('reserve'), run('authorise')]),
      { name: 'coolDown', kind: 'sleep' },
      { name: 'awaitPayment', kind: 'signal' },
      run('charge', false),
    ],
    states: 24,
  },
];

function shapeOf(spec: ModelStepSpec): SagaStepShape {
  if (spec.branches) return { name: spec.name, compensable: false, parallel: spec.branches.map(shapeOf) };
  if (spec.kind === 'child') return { name: spec.name, kind: 'child', compensable: true };
  const kind = spec.kind === 'run' ? 'run' : spec.kind === 'sleep' || spec.kind === 'until' ? 'sleep' : 'signal';
  return {
    name: spec.name,
    kind,
    compensable: spec.compensable === true,
    undoOnFailure: spec.undoOnFailure === true,
    canFail: spec.kind !== 'sleep' && spec.kind !== 'signalForever',
  };
}

function eventsOf(specs: ModelStepSpec[]): AnyEventObject[] {
  const events: AnyEventObject[] = [
    { type: RESULT_REFUSED, error: new Error('result refused') },
    { type: CANCEL, error: new KeelError('CANCELLED', REASON), reason: REASON },
    { type: SKIP },
  ];
  for (const { name, kind } of specs.flatMap((s) => s.branches ?? [s])) {
    if (kind === 'parallel') continue;
    if (kind === 'run') events.push({ type: `${RESULT_REFUSED}.${name}`, error: new Error('result refused') });
    const output =
      kind === 'run'
        ? `${name}-done`
        : kind === 'child'
          ? { ship: `${name}-done` }
          : kind.startsWith('signal')
            ? { paid: name }
            : undefined;
    events.push({ type: `xstate.done.actor.run.${name}`, output });
    events.push({ type: `xstate.error.actor.run.${name}`, error: new Error(`${name} failed`) });
    events.push({ type: `xstate.done.actor.compensate.${name}`, output: undefined });
    events.push({ type: `xstate.error.actor.compensate.${name}`, error: new Error(`undo ${name} failed`) });
  }
  return events;
}

/**
 * The saga's steps as the runtime runs them, each settled by the test: calls
 * and undos wait for a deferred, sleeps for the clock, signal waits for
 * `saga.signal` or their timeout. An `until` throws when the path says it
 * fails (it is computed when the saga reaches the step).
 */
function controlledSaga(specs: ModelStepSpec[], clock: TestClock, untilFails: Set<string>) {
  const runs = new Map<string, Deferred<unknown>>();
  const undos = new Map<string, Deferred<unknown>>();
  const signals = new Map<string, AbortSignal>();
  const stepOf = (spec: ModelStepSpec): SagaStep => {
    const { name } = spec;
    switch (spec.kind) {
      case 'parallel':
        return { name, parallel: (spec.branches ?? []).map(stepOf) as SagaRunStep[] };
      case 'child':
        // The child saga (registered by the test) settles through this step's deferreds.
        return { name, saga: `child-${name}` };
      case 'sleep':
        return { name, sleepMs: SLEEP_MS };
      case 'until':
        return {
          name,
          until: () => {
            if (untilFails.has(name)) throw new Error(`${name}: no slot`);
            return clock.now() + SLEEP_MS;
          },
        };
      case 'signal':
        return { name, waitFor: `${SIGNAL}.${name}`, timeoutMs: SIGNAL_TIMEOUT_MS };
      case 'signalForever':
        return { name, waitFor: `${SIGNAL}.${name}` };
      default:
        return {
          name,
          ...(spec.undoOnFailure && { compensateOnFailure: true }),
          run: (ctx: { signal: AbortSignal }) => {
            signals.set(name, ctx.signal);
            const d = deferred<unknown>();
            runs.set(name, d);
            return d.promise;
          },
          ...(spec.compensable && {
            compensate: () => {
              const d = deferred<unknown>();
              undos.set(name, d);
              return d.promise;
            },
          }),
        };
    }
  };
  /** The child sagas the `child` steps run: one step each, settled through the parent step's deferreds. */
  const children = specs
    .filter((spec) => spec.kind === 'child')
    .map((spec) => ({
      name: `child-${spec.name}`,
      steps: [
        {
          name: 'ship',
          run: (ctx: { signal: AbortSignal }) => {
            signals.set(spec.name, ctx.signal);
            const d = deferred<unknown>();
            runs.set(spec.name, d);
            return d.promise;
          },
          compensate: () => {
            const d = deferred<unknown>();
            undos.set(spec.name, d);
            return d.promise;
          },
        },
      ],
    }));
  return { steps: specs.map(stepOf), children, runs, undos, signals };
}

const coverage: string[] = [];
afterAll(() => {
  for (const line of coverage) console.log(line);
});

describe.each(shapes)('$label, from its graph', ({ label, steps: specs, states }) => {
  const machine = createSagaMachine('checkout', specs.map(shapeOf));
  const all = eventsOf(specs);
  const branchNames = new Set(specs.flatMap((s) => (s.branches ?? []).map((b) => b.name)));
  // Whether a branch is undone or skipped is the runner's reading of the context (did it complete?): offer the
  // events that can happen in each state, so the paths are ones the runtime can take.
  const events = (snapshot: AnyMachineSnapshot) => {
    const value = snapshot.value as Record<string, unknown>;
    const undoing = (value.compensating ?? value.cancelling) as string | undefined;
    const completed = (snapshot.context as SagaContext).completed ?? [];
    return all.filter((e) => {
      if (e.type === SKIP) return undoing !== undefined && branchNames.has(undoing) && !completed.includes(undoing);
      const undo = /^xstate\.(done|error)\.actor\.compensate\.(.+)$/.exec(e.type)?.[2];
      return undo === undefined || !branchNames.has(undo) || completed.includes(undo);
    });
  };
  const plan = planPaths(machine, { events, input: { sagaId: 's', input: { cart: 1 } } });
  coverage.push(plan.coverage.format(`saga (${label})`));
  const kindOf = new Map(specs.flatMap((s) => s.branches ?? [s]).map((s) => [s.name, s.kind]));

  it('covers every state and transition', () => {
    expect(plan.coverage.complete, plan.coverage.format('saga')).toBe(true);
    expect(plan.coverage.states.total).toBe(states);
  });

  // The engine's memoised transitions are XState's own: along every path, the same state, status and context.
  it.each(plan.paths.map((p) => [p.description, p] as const))('the engine steps as XState does: %s', (_name, path) => {
    const input = { sagaId: 's', input: { cart: 1 } };
    const engine = new SagaEngine(machine);
    // Twice: the first walk fills the memo, the second replays it.
    for (let round = 0; round < 2; round++) {
      let [snapshot] = initialTransition(machine, input);
      let step = engine.start(input);
      for (const { event, state: expected } of path.steps.slice(1)) {
        [snapshot] = transition(machine, snapshot, event as never);
        step = engine.next(step.state, event as SagaStepEvent);
        expect(snapshot.value).toEqual(expected.value);
        expect(step.state.value).toEqual(snapshot.value);
        expect(step.state.done).toBe(snapshot.status === 'done');
        expect(step.state.context).toEqual(snapshot.context);
      }
    }
  });

  // Watched or not, the runner runs the saga the same way; watched, an actor of the machine mirrors it in the system.
  const modes = [
    ['uninspected', undefined],
    ['inspected', () => {}],
  ] as const;
  const cases = modes.flatMap(([mode, inspect]) =>
    plan.paths.map((p) => [`${mode}: ${p.description}`, p, inspect] as const),
  );
  it.each(cases)('%s', async (_name, path, inspect) => {
    const clock = new TestClock();
    // The states the runtime passed through, as it checkpointed them: a step that fails as it starts (an `until`
    // that throws) moves on before the test looks, so the runtime is observed along its checkpoints.
    const base = memoryStore();
    const passed: StateValue[] = [];
    const store = {
      ...base,
      async saveSaga(record: SagaRecord) {
        if (record.saga !== 'checkout') return base.saveSaga(record); // a child saga's own checkpoints
        const value = JSON.parse(record.state) as StateValue;
        if (JSON.stringify(passed.at(-1)) !== JSON.stringify(value)) passed.push(value);
        return base.saveSaga(record);
      },
    };
    const rt = createRuntime({ store, clock, onError: () => {}, inspect });
    const untilFails = new Set(
      path.steps
        .map((s) => eventKind(s.event))
        .flatMap((k) => (k.kind === 'error' && kindOf.get(k.actorId.slice(4)) === 'until' ? [k.actorId.slice(4)] : [])),
    );
    const fake = controlledSaga(specs, clock, untilFails);
    const published: string[] = [];
    rt.bus.subscribe('saga.checkout.>', (_p, e) => {
      published.push(e.type.slice('saga.checkout.'.length));
    });
    for (const child of fake.children) {
      rt.saga(child.name, { steps: child.steps, compensationRetry: { maxAttempts: 1 }, shutdownGraceMs: 0 });
    }
    const saga = rt.saga('checkout', { steps: fake.steps, compensationRetry: { maxAttempts: 1 }, shutdownGraceMs: 0 });
    await rt.start();
    const result = saga.execute({ cart: 1 }, { id: 's' });
    let ended: Awaited<typeof result> | undefined;
    result.then((r) => (ended = r)).catch(() => {});
    await settle();
    let seen = 0;
    /** The branches of the parallel group the saga is in that still run. */
    const runningBranches = (): string[] => {
      const at = (saga.stateOf('s') as { running?: unknown } | undefined)?.running;
      if (typeof at !== 'object' || at === null) return [];
      const regions = Object.values(at)[0] as Record<string, string>;
      return Object.entries(regions).flatMap(([b, s]) => (s === 'run' ? [b] : []));
    };
    const expectAborted = (names: string[]) => {
      for (const b of names) {
        expect(fake.signals.get(b)?.aborted, `${b} aborted`).toBe(true);
        expect(fake.signals.get(b)?.reason).toMatchObject({ code: 'CANCELLED' });
      }
    };
    const driver: Driver = {
      async send(step) {
        const k = eventKind(step.event);
        if (k.kind === 'event' && k.type.startsWith(RESULT_REFUSED)) {
          // The running step returns a value the saga cannot keep (a BigInt): its effect happened all the same.
          const name = k.type.slice(RESULT_REFUSED.length + 1) || (saga.stateOf('s') as { running: string }).running;
          const others = runningBranches().filter((b) => b !== name);
          fake.runs.get(name)?.resolve({ amount: 10n });
          await settle();
          expectAborted(others);
          return;
        }
        if (k.kind === 'event' && k.type === SKIP) return; // the runner skipped the undo of a branch that never completed
        if (k.kind === 'event' && k.type === CANCEL) {
          const name = (saga.stateOf('s') as { running: string }).running;
          const branches = runningBranches();
          saga.cancel('s', REASON).catch(() => {});
          await settle();
          // The step in flight is told through its signal, with the CANCELLED reason.
          expectAborted(kindOf.get(name) === 'run' ? [name] : branches);
          return;
        }
        if (k.kind !== 'done' && k.kind !== 'error') throw new Error(`no driver for ${step.event.type}`);
        const [phase, name] = k.actorId.split('.') as ['run' | 'compensate', string];
        const kind = kindOf.get(name);
        if (phase === 'run' && kind === 'child') {
          // The child's one step settles; the child ends (completed, or compensated with nothing to undo).
          const pending = fake.runs.get(name);
          if (k.kind === 'done') pending?.resolve((k.output as { ship: unknown }).ship);
          else pending?.reject(k.error);
          await settle();
          return;
        }
        if (phase === 'run' && kind !== 'run') {
          if (kind === 'until' && k.kind === 'error') return; // it threw when the saga reached it
          if (kind === 'sleep' || kind === 'until') await clock.advance(SLEEP_MS);
          else if (k.kind === 'done') await saga.signal('s', `${SIGNAL}.${name}`, k.output);
          else await clock.advance(SIGNAL_TIMEOUT_MS);
          await settle();
          return;
        }
        const pending = (phase === 'run' ? fake.runs : fake.undos).get(name);
        if (!pending) throw new Error(`the runtime is not waiting for ${k.actorId}`);
        const others = runningBranches().filter((b) => b !== name);
        if (k.kind === 'done') pending.resolve(k.output);
        else pending.reject(k.error);
        await settle();
        // A branch that fails aborts the branches still running.
        if (k.kind === 'error' && phase === 'run' && branchNames.has(name)) expectAborted(others);
      },
      observe: () => {
        if (inspect) {
          const actor = rt.system.system.get('saga.checkout.s') as AnyActorRef | undefined;
          expect(actor === undefined).toBe(saga.stateOf('s') === undefined);
          if (actor) expect(actor.getSnapshot().value).toEqual(saga.stateOf('s'));
        }
        const at = passed[seen];
        if (at === undefined) return 'not checkpointed' as never;
        seen++;
        return at;
      },
    };
    await replayPath(path, driver);
    // Nothing more happened than the path says, but for the undos of branches that never completed, which the
    // runner skips on its own as the model would.
    let last = path.steps.at(-1)?.state;
    const skipped: StateValue[] = [];
    while (last && events(last).some((e) => e.type === SKIP)) {
      [last] = transition(machine, last as never, { type: SKIP });
      skipped.push(last.value);
    }
    expect(passed.slice(seen)).toEqual(skipped);
    if (last?.status === 'done') {
      const r = await result;
      expect(r.status).toBe(last.value);
      expect(ended).toBe(r);
      if (r.status !== 'completed') {
        expect(r.failedStep).toBe(last.context.failedStep);
        expect(r.compensated).toEqual(last.context.compensated);
      } else {
        expect(r.results).toEqual(last.context.results);
      }
      if (r.status === 'cancelled') {
        expect(r.reason).toBe(REASON);
        expect(r.error).toMatchObject({ code: 'CANCELLED' });
      }
      // A refused result is never a silent skip: the step is undone, or the saga stops `failed` for an operator.
      const refused = path.steps.find((s) => s.event.type === RESULT_REFUSED);
      if (refused) {
        const step = (refused.state.context as { failedStep: string }).failedStep;
        expect(r.status === 'failed' || (r.status === 'compensated' && r.compensated.includes(step))).toBe(true);
        expect((r as { error: { code: string } }).error.code).toBe('INVALID_PAYLOAD');
      }
      expect(published.at(-1)).toBe(last.value);
    } else {
      expect(saga.stateOf('s')).toEqual(last?.value);
    }
    expect(published[0]).toBe('started');
    await rt.stop();
    if (last?.status !== 'done') await expect(result).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
  });
});
