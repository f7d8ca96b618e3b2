import { afterAll, describe, expect, it } from 'vitest';
import { type AnyActorRef, type AnyEventObject, initialTransition, transition } from 'xstate';
import { SagaEngine } from '../../src/actors/saga/engine.js';
import { createRuntime } from '../../src/index.js';
import { createSagaMachine, RESULT_REFUSED, type SagaStepEvent } from '../../src/machines/saga.js';
import { type Driver, eventKind, planPaths, replayPath, settle, TestClock } from '../../src/testing/index.js';
import { controlledSteps } from '../fixtures/controlledSteps.js';

const names = ['createOrder', 'deductInventory', 'processPayment'] as const;

const events: AnyEventObject[] = [{ type: RESULT_REFUSED, error: new Error('result refused') }];
for (const name of names) {
  events.push({ type: `xstate.done.actor.run.${name}`, output: `${name}-done` });
  events.push({ type: `xstate.error.actor.run.${name}`, error: new Error(`${name} failed`) });
  events.push({ type: `xstate.done.actor.compensate.${name}`, output: undefined });
  events.push({ type: `xstate.error.actor.compensate.${name}`, error: new Error(`undo ${name} failed`) });
}

// The machine's shape depends on the steps' options: the plain checkout, and one whose middle step is undone on failure.
const shapes = [
  { label: 'a generated 3-step saga', undoOnFailure: undefined },
  {
    label: 'a 3-step saga whose deductInventory is undone on failure',
    undoOnFailure: 'deductInventory',
    transitions: 10,
  },
] as const;

const coverage: string[] = [];
afterAll(() => {
  for (const line of coverage) console.log(line);
});

describe.each(shapes)('$label, from its graph', ({ label, undoOnFailure }) => {
  const machine = createSagaMachine(
    'checkout',
    names.map((name, i) => ({ name, compensable: i < names.length - 1, undoOnFailure: name === undoOnFailure })),
  );
  const plan = planPaths(machine, { events, input: { sagaId: 's', input: { cart: 1 } } });
  coverage.push(plan.coverage.format(undoOnFailure ? `saga (${label})` : 'saga'));

  it('covers every state and transition', () => {
    expect(plan.coverage.complete, plan.coverage.format('saga')).toBe(true);
    expect(plan.coverage.states.total).toBe(10);
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
    const rt = createRuntime({ clock: new TestClock(), onError: () => {}, inspect });
    const fake = controlledSteps(names, { undoOnFailure });
    const published: string[] = [];
    rt.bus.subscribe('saga.checkout.>', (_p, e) => {
      published.push(e.type.slice('saga.checkout.'.length));
    });
    const saga = rt.saga('checkout', { steps: fake.steps, compensationRetry: { maxAttempts: 1 }, shutdownGraceMs: 0 });
    await rt.start();
    const result = saga.execute({ cart: 1 }, { id: 's' });
    let ended: Awaited<typeof result> | undefined;
    result.then((r) => (ended = r)).catch(() => {});
    await settle();
    const driver: Driver = {
      async send(step) {
        const k = eventKind(step.event);
        if (k.kind === 'event' && k.type === RESULT_REFUSED) {
          // The running step returns a value the saga cannot keep (a BigInt): its effect happened all the same.
          const name = (saga.stateOf('s') as { running: string }).running;
          fake.runs.get(name)?.resolve({ amount: 10n });
          await settle();
          return;
        }
        if (k.kind !== 'done' && k.kind !== 'error') throw new Error(`no driver for ${step.event.type}`);
        const [phase, name] = k.actorId.split('.') as ['run' | 'compensate', string];
        const pending = (phase === 'run' ? fake.runs : fake.undos).get(name);
        if (!pending) throw new Error(`the runtime is not waiting for ${k.actorId}`);
        if (k.kind === 'done') pending.resolve(k.output);
        else pending.reject(k.error);
        await settle();
      },
      observe: () => {
        if (inspect) {
          const actor = rt.system.system.get('saga.checkout.s') as AnyActorRef | undefined;
          expect(actor === undefined).toBe(saga.stateOf('s') === undefined);
          if (actor) expect(actor.getSnapshot().value).toEqual(saga.stateOf('s'));
        }
        return (saga.stateOf('s') ?? ended?.status ?? 'gone before it ended') as never;
      },
    };
    await replayPath(path, driver);
    const last = path.steps.at(-1)?.state;
    if (last?.status === 'done') {
      const r = await result;
      expect(r.status).toBe(last.value);
      if (r.status !== 'completed') {
        expect(r.failedStep).toBe(last.context.failedStep);
        expect(r.compensated).toEqual(last.context.compensated);
      }
      // A refused result is never a silent skip: the step is undone, or the saga stops `failed` for an operator.
      const refused = path.steps.find((s) => s.event.type === RESULT_REFUSED);
      if (refused) {
        const step = (refused.state.context as { failedStep: string }).failedStep;
        expect(r.status === 'failed' || (r.status === 'compensated' && r.compensated.includes(step))).toBe(true);
        expect((r as { error: { code: string } }).error.code).toBe('INVALID_PAYLOAD');
      }
      expect(published.at(-1)).toBe(last.value);
    }
    expect(published[0]).toBe('started');
    await rt.stop();
    if (last?.status !== 'done') await expect(result).rejects.toMatchObject({ code: 'RUNTIME_STOPPED' });
  });
});
