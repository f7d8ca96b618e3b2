/**
 * Event bus: keel's `rt.bus.publish` against mitt, Node's EventEmitter and
 * EventEmitter2 (exact topics), EventEmitter2 with wildcards, and a direct
 * `actor.send` (actor delivery). Every handler does a trivial amount of work
 * (a counter) and the counters are checked after each comparison, so nothing
 * is optimized away and every contender really delivered.
 */
import { EventEmitter } from 'node:events';
import eventemitter2 from 'eventemitter2';
import mittImport from 'mitt';
import { assign, createActor, setup } from 'xstate';
import { createRuntime } from '../src/index.js';
import { compare, type TableRow } from './harness.js';

// Both packages are CommonJS-typed: at runtime the default import is the function or class itself.
const mitt = mittImport as unknown as typeof mittImport.default;
const EventEmitter2 = eventemitter2 as unknown as typeof eventemitter2.EventEmitter2;

const TOPIC = 'order.placed';
const payload = { orderId: 'o1', total: 42 };

/** Per-contender counters: publishes made and handler calls seen. */
class Tally {
  published = 0;
  handled = 0;
  /** Throws unless every publish reached exactly `subscribers` handlers. */
  verify(name: string, subscribers: number): void {
    if (this.published === 0 || this.handled !== this.published * subscribers) {
      throw new Error(
        `${name}: ${this.published} publishes x ${subscribers} subscribers should make ${this.published * subscribers} handler calls, saw ${this.handled}`,
      );
    }
  }
}

/** `n` distinct handler functions counting into `t`. */
function handlers(t: Tally, n: number): Array<(p: unknown) => void> {
  return Array.from({ length: n }, () => () => {
    t.handled++;
  });
}

type Rt = ReturnType<typeof createRuntime>;

/**
 * Exact topic, `subscribers` function handlers. With `envelope`, keel's
 * handlers take `(payload, event)` and read the event's time, so keel must build
 * the envelope and stamp it (one clock read per event-loop turn; handlers that
 * take only the payload let it skip both), against mitt handing over the payload.
 */
async function exactTopic(rt: Rt, subscribers: number, envelope = false): Promise<TableRow[]> {
  const keel = new Tally();
  for (const h of handlers(keel, subscribers)) {
    rt.bus.subscribe(
      TOPIC,
      envelope
        ? (_p, e) => {
            keel.handled += e.time > 0 ? 1 : 0;
          }
        : h,
    );
  }

  const m = new Tally();
  const em = mitt<Record<string, unknown>>();
  for (const h of handlers(m, subscribers)) em.on(TOPIC, h);

  const n = new Tally();
  const ee = new EventEmitter();
  ee.setMaxListeners(0);
  for (const h of handlers(n, subscribers)) ee.on(TOPIC, h);

  const e2 = new Tally();
  const ee2 = new EventEmitter2({ maxListeners: 0 });
  for (const h of handlers(e2, subscribers)) ee2.on(TOPIC, h);

  const name = `publish, exact topic, ${subscribers} subscriber${subscribers > 1 ? 's' : ''}${envelope ? ' using (payload, event)' : ''}`;
  const all = {
    mitt: () => {
      m.published++;
      em.emit(TOPIC, payload);
    },
    EventEmitter: () => {
      n.published++;
      ee.emit(TOPIC, payload);
    },
    EventEmitter2: () => {
      e2.published++;
      ee2.emit(TOPIC, payload);
    },
  };
  return compare({
    name,
    keel: () => {
      keel.published++;
      rt.bus.publish(TOPIC, payload);
    },
    // The envelope row is against mitt only: what a handler that reads the envelope costs.
    vs: envelope ? { mitt: all.mitt } : all,
    target: { mitt: 1.0 },
    check: () => {
      keel.verify(`keel ${name}`, subscribers);
      m.verify(`mitt ${name}`, subscribers);
      if (envelope) return;
      n.verify(`EventEmitter ${name}`, subscribers);
      e2.verify(`EventEmitter2 ${name}`, subscribers);
    },
  });
}

/** One or more wildcard patterns (keel syntax) and their EventEmitter2 equivalents; publish `order.placed`. */
async function wildcard(rt: Rt, patterns: ReadonlyArray<readonly [keel: string, ee2: string]>): Promise<TableRow[]> {
  const keel = new Tally();
  const e2 = new Tally();
  const ee2 = new EventEmitter2({ wildcard: true, delimiter: '.', maxListeners: 0 });
  for (const [k, e] of patterns) {
    rt.bus.subscribe(k, () => {
      keel.handled++;
    });
    ee2.on(e, () => {
      e2.handled++;
    });
  }
  const name = `publish ${TOPIC}, wildcard ${patterns.map(([k]) => k).join(' + ')}`;
  return compare({
    name,
    keel: () => {
      keel.published++;
      rt.bus.publish(TOPIC, payload);
    },
    vs: {
      'EventEmitter2 (wildcard)': () => {
        e2.published++;
        ee2.emit(TOPIC, payload);
      },
    },
    target: 2.0,
    check: () => {
      keel.verify(`keel ${name}`, patterns.length);
      e2.verify(`EventEmitter2 ${name}`, patterns.length);
    },
  });
}

/**
 * Subscribe and unsubscribe a wildcard pattern, cycling through 10,000 tenants
 * (`tenant<i>.*.updated`): the path of one-off subscriptions. keel gives each
 * pattern's nodes back on unsubscribe and builds them again next time, so this
 * row shows what not leaking costs.
 */
async function subscribeChurn(rt: Rt): Promise<TableRow[]> {
  const TENANTS = 10_000;
  const handler = () => {};
  const ee2 = new EventEmitter2({ wildcard: true, delimiter: '.', maxListeners: 0 });
  let k = 0;
  let e = 0;
  const name = `subscribe + unsubscribe, wildcard tenant<i>.*.updated (${TENANTS / 1000}k tenants in turn)`;
  return compare({
    name,
    keel: () => {
      rt.bus.subscribe(`tenant${k++ % TENANTS}.*.updated`, handler)();
    },
    vs: {
      'EventEmitter2 (wildcard)': () => {
        const topic = `tenant${e++ % TENANTS}.*.updated`;
        ee2.on(topic, handler);
        ee2.off(topic, handler);
      },
    },
    check: () => {
      // Both really subscribed and unsubscribed: nothing is left listening.
      if (
        k === 0 ||
        e === 0 ||
        rt.bus.publish('tenant1.x.updated', null) !== 0 ||
        ee2.listenerCount('tenant1.x.updated') !== 0
      ) {
        throw new Error(`${name}: a subscription outlived its unsubscribe`);
      }
    },
  });
}

const counter = setup({
  types: {
    context: {} as { count: number },
    events: {} as { type: typeof TOPIC; payload: unknown },
  },
}).createMachine({
  context: { count: 0 },
  on: { [TOPIC]: { actions: assign({ count: ({ context }) => context.count + 1 }) } },
});

async function actorDelivery(rt: Rt): Promise<TableRow[]> {
  const viaBus = createActor(counter).start();
  const direct = createActor(counter).start();
  rt.bus.subscribe(TOPIC, viaBus);
  let viaBusPublished = 0;
  let directSent = 0;
  const name = 'deliver to an XState actor';
  return compare({
    name,
    keel: () => {
      viaBusPublished++;
      rt.bus.publish(TOPIC, payload);
    },
    vs: {
      'actor.send': () => {
        directSent++;
        direct.send({ type: TOPIC, payload });
      },
    },
    target: 0.9,
    check: () => {
      const seen = [viaBus.getSnapshot().context.count, direct.getSnapshot().context.count];
      if (seen[0] !== viaBusPublished || seen[1] !== directSent || directSent === 0) {
        throw new Error(`${name}: actors counted ${seen.join('/')} of ${viaBusPublished}/${directSent} events`);
      }
      viaBus.stop();
      direct.stop();
    },
  });
}

/** Each case gets a fresh runtime, so earlier subscriptions do not show up in later topics. */
async function withRuntime(fn: (rt: Rt) => Promise<TableRow[]>): Promise<TableRow[]> {
  const rt = createRuntime();
  await rt.start();
  try {
    return await fn(rt);
  } finally {
    await rt.stop();
  }
}

/** The bus benchmark rows. */
export async function run(): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  rows.push(...(await withRuntime((rt) => exactTopic(rt, 1))));
  rows.push(...(await withRuntime((rt) => exactTopic(rt, 10))));
  rows.push(...(await withRuntime((rt) => exactTopic(rt, 1, true))));
  rows.push(...(await withRuntime((rt) => wildcard(rt, [['order.*', 'order.*']]))));
  rows.push(...(await withRuntime((rt) => wildcard(rt, [['order.>', 'order.**']]))));
  rows.push(
    ...(await withRuntime((rt) =>
      wildcard(rt, [
        ['order.*', 'order.*'],
        ['order.>', 'order.**'],
        ['*.placed', '*.placed'],
      ]),
    )),
  );
  rows.push(...(await withRuntime(actorDelivery)));
  rows.push(...(await withRuntime(subscribeChurn)));
  return rows;
}
