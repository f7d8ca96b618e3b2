import type * as Prom from 'prom-client';
import type {
  AttemptOutcome,
  AttemptScope,
  BreakerCallOutcome,
  BreakerRefusal,
  TaskAttemptInfo,
} from '../core/telemetry.js';
import type { Runtime } from '../runtime/createRuntime.js';
import { type Made, METRICS, makeMetrics } from './metricSpecs.js';

/** The bus topics' last token for a task, as the `outcome` label counts it. */
const TASK_OUTCOMES: Record<string, string> = {
  succeeded: 'succeeded',
  retrying: 'retried',
  dead: 'dead',
  cancelled: 'cancelled',
};
const SAGA_ENDS = new Set(['completed', 'compensated', 'failed', 'cancelled']);

/** Saga start times kept for the duration histogram; beyond, the oldest are forgotten (runs finished elsewhere). */
const MAX_OPEN_SAGAS = 10_000;

/** The metrics of one runtime, in a registry of its own (two runtimes in one process do not collide). */
export class RuntimeMetricSet {
  readonly registry: Prom.Registry;
  private readonly m: Made<typeof METRICS>;
  /** `<saga>\0<sagaId>` → when this process saw it start (runtime clock). */
  private readonly sagaStarts = new Map<string, number>();
  private readonly offs: Array<() => void> = [];

  constructor(
    client: typeof Prom,
    private readonly rt: Runtime<any>,
  ) {
    this.registry = new client.Registry();
    this.m = makeMetrics(client, this.registry, METRICS, {
      queueStats: () => this.queueStats(),
      breakerStates: () => this.breakerStates(),
    });
    this.listen();
  }

  /** Stops following the bus (the runtime stops); the values stay readable. */
  close(): void {
    for (const off of this.offs.splice(0)) off();
    this.sagaStarts.clear();
  }

  /** An attempt starts: its wait is observed now, its run time when it ends. */
  attempt(info: TaskAttemptInfo): AttemptScope {
    if (info.waitedMs !== undefined) this.m.taskWait.observe({ queue: info.queue }, info.waitedMs / 1000);
    return new MeasuredAttempt(this.m.taskRun, info.queue);
  }

  breakerCall(breaker: string, ms: number, outcome: BreakerCallOutcome): void {
    this.m.breakerCalls.observe({ breaker, outcome }, ms / 1000);
  }

  breakerRefused(breaker: string, reason: BreakerRefusal): void {
    this.m.breakerRefusals.inc({ breaker, reason });
  }

  /** Outcomes are counted from the bus: what was stored and announced, whichever process ran the attempt here. */
  private listen(): void {
    const bus = this.rt.bus;
    this.offs.push(
      bus.subscribe('task.>', (payload: { queue?: unknown }, event) => {
        const outcome = TASK_OUTCOMES[lastToken(event.type)];
        if (outcome !== undefined && typeof payload?.queue === 'string')
          this.m.tasks.inc({ queue: payload.queue, outcome });
      }),
      bus.subscribe('saga.>', (payload: { sagaId?: unknown }, event) => this.sagaEvent(event.type, payload?.sagaId)),
      bus.subscribe('breaker.>', (payload: { breaker?: unknown; state?: unknown }) => {
        // Also `fleetJoined` / `fleetLost`, which carry no state: not transitions of the machine.
        if (typeof payload?.breaker === 'string' && typeof payload.state === 'string') {
          this.m.breakerTransitions.inc({ breaker: payload.breaker, state: payload.state });
        }
      }),
    );
  }

  private sagaEvent(topic: string, sagaId: unknown): void {
    const what = lastToken(topic);
    // `saga.<name>.<what>`: a saga's name may hold dots, its event never does.
    const saga = topic.slice('saga.'.length, topic.length - what.length - 1);
    if (saga === '' || typeof sagaId !== 'string') return;
    const key = `${saga}\0${sagaId}`;
    if (what === 'started') {
      this.m.sagas.inc({ saga, outcome: 'started' });
      this.sagaStarts.delete(key);
      this.sagaStarts.set(key, this.rt.clock.now());
      if (this.sagaStarts.size > MAX_OPEN_SAGAS) this.sagaStarts.delete(this.sagaStarts.keys().next().value as string);
      return;
    }
    if (!SAGA_ENDS.has(what)) return;
    this.m.sagas.inc({ saga, outcome: what });
    const start = this.sagaStarts.get(key);
    if (start === undefined) return;
    this.sagaStarts.delete(key);
    this.m.sagaDuration.observe({ saga, outcome: what }, (this.rt.clock.now() - start) / 1000);
  }

  /** Every queue of the runtime with its counts; none unless it runs (the store is open). */
  private async queueStats(): Promise<Array<[string, Record<string, number>]>> {
    if (this.rt.state !== 'running') return [];
    const names = registered(this.rt, 'queue.');
    const stats = await Promise.all(
      names.map((name) =>
        this.rt
          .queue(name)
          .stats()
          .then(
            (s) => s as unknown as Record<string, number>,
            () => undefined,
          ),
      ),
    );
    const out: Array<[string, Record<string, number>]> = [];
    for (let i = 0; i < names.length; i++) if (stats[i] !== undefined) out.push([names[i]!, stats[i]!]);
    return out;
  }

  private breakerStates(): Array<[string, string]> {
    const all = this.rt.system.system.getAll() as Record<string, { getSnapshot(): { value: unknown; status: string } }>;
    const out: Array<[string, string]> = [];
    for (const [id, ref] of Object.entries(all)) {
      if (!id.startsWith('breaker.')) continue;
      const snap = ref.getSnapshot();
      if (snap.status === 'active') out.push([id.slice('breaker.'.length), String(snap.value)]);
    }
    return out;
  }
}

/** An attempt whose run time goes to `keel_task_run_seconds` (a class: no closures made per attempt). */
class MeasuredAttempt implements AttemptScope {
  constructor(
    private readonly histogram: Prom.Histogram,
    private readonly queue: string,
  ) {}

  run<T>(fn: () => T): T {
    return fn();
  }

  end(outcome: AttemptOutcome, ms: number): void {
    this.histogram.observe({ queue: this.queue, outcome }, ms / 1000);
  }
}

function lastToken(topic: string): string {
  return topic.slice(topic.lastIndexOf('.') + 1);
}

/** Names of the runtime's actors registered as `<prefix><name>` (queues, breakers). */
function registered(rt: Runtime<any>, prefix: string): string[] {
  return Object.keys(rt.system.system.getAll())
    .filter((id) => id.startsWith(prefix))
    .map((id) => id.slice(prefix.length));
}
